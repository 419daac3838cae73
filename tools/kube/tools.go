//go:build tools

// Package kube pins the Kubernetes control-plane binaries used by ferry's
// local test cluster. It is never compiled; `make tools` builds the commands.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
