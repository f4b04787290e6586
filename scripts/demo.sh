#!/usr/bin/env bash
# The demo: the whole system on this machine, autoscaling. Installs what it lacks, builds ebb
# and runs `ebb up` (flags are passed through, e.g. scripts/demo.sh --per-msg 200ms).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked -p ebb --quiet
exec target/release/ebb up "$@"
