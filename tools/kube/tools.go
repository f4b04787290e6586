//go:build tools

// Package tools pins the Kubernetes commands ebb's e2e tests run (the control plane, the
// scheduler, and the kubelet of the optional node); it is never compiled into anything (the
// build tag keeps it out), it only holds their imports for go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
