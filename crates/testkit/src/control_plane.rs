//! A real kube-apiserver and kube-controller-manager on loopback (in progress).
