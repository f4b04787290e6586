//go:build tools

// Package tools pins the prometheus-adapter command; the build tag keeps it out of every build.
package tools

import _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
