//go:build tools

// Package tools pins the etcd server command; the build tag keeps it out of every build.
package tools

import _ "go.etcd.io/etcd/server/v3"
