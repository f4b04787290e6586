#!/usr/bin/env bash
# Runs every check and test of ebb: the README's test command. Installs what it lacks first
# (Debian packages, Go for the upstream tools) and builds the pinned Kubernetes binaries the
# e2e tests run (cold: tens of minutes on 2 cores; cached after that).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== shellcheck"
git ls-files '*.sh' .ci/run | xargs shellcheck -x
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== control plane and node binaries (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, containerd, etcd, helm, prometheus-adapter)"
scripts/control-plane.sh build
echo "== helm lint"
"$(scripts/control-plane.sh bin-dir)/helm" lint --strict helm/charts/*
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
