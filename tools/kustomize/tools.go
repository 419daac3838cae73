//go:build tools

// Package kustomize pins the kustomize CLI, the render baseline of `make bench`.
package kustomize

import _ "sigs.k8s.io/kustomize/kustomize/v5"
