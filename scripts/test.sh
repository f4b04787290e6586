#!/usr/bin/env bash
# Runs every check and test of ebb: the README's test command. Installs what it lacks first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== shellcheck"
git ls-files '*.sh' .ci/run | xargs shellcheck
echo "== cargo test"
cargo test --workspace --locked
