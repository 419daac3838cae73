//go:build tools

// Package kwok pins kwok and kwokctl for ferry's local test cluster.
package kwok

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
	_ "sigs.k8s.io/kwok/cmd/kwokctl"
)
