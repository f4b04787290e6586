#!/usr/bin/env bash
# Runs every check and test of ebb: the README's test command. Installs what it lacks first
# (Debian packages, Go for the upstream tools) and builds the pinned Kubernetes binaries the
# e2e tests run (cold: tens of minutes on 2 cores; cached after that).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# A full run writes about 12 GB (debug, release and clippy builds, test state) and the node's
# kubelet needs room left after that; say so up front rather than as pods that stop answering.
free_gib="$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')"
echo "== disk: $free_gib GiB free under $(pwd)"
if [ "$free_gib" -lt 15 ]; then
  echo "warning: less than 15 GiB free: the build or the node tests may run out of disk" >&2
fi

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
