//go:build tools

// Package tools pins containerd, the container runtime of the optional test node: the daemon,
// the runc shim and ctr (which imports the node's local images). The build tag keeps it out of
// every build.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
