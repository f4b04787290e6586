#!/usr/bin/env bash
# Reaction time of the dojo's autoscaling chain on the loopback control plane:
#   items pushed ─▶ HPA desiredReplicas and Deployment spec.replicas at the target (up)
#   list emptied ─▶ both back at 0 (down, includes the 20 s stabilization window)
# This is the reference; later ebb components (metrics-api, operator) are measured in the
# same run and printed as ratios against it.
#
#   bench/dojo-pipeline/run.sh [--items 100] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/control-plane.sh build >&2
cargo build -q -p ebb-e2e --bin dojo-reaction
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
target/debug/dojo-reaction "$@" | tee "$results"

awk '
  /scale_up_to=/   { split($NF, kv, "="); up += kv[2]; ups++ }
  /scale_down_to=/ { split($NF, kv, "="); down += kv[2]; downs++ }
  END {
    if (ups == 0) { print "dojo-pipeline: no measurement" > "/dev/stderr"; exit 1 }
    printf "dojo pipeline (redis_exporter → Prometheus → prometheus-adapter → HPA), mean of %d rounds:\n", ups
    printf "  scale up   %6.2f s   (ratio 1.00, the reference)\n", up / ups
    printf "  scale down %6.2f s   (ratio 1.00, the reference)\n", down / downs
  }' "$results"
