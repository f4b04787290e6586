#!/usr/bin/env bash
# Scaling with pods that really run, on one loopback node (scripts/control-plane.sh up --node):
# the consumer chart from the ebb image (scripts/image.sh), scaled by the dojo chain
# (redis_exporter → Prometheus → prometheus-adapter → HPA), by the same HPA fed by
# `ebb metrics-api` (a pod on the node, from its chart) and by `ebb operator run` (a
# QueueScaler), side by side in one run. Figures (crates/e2e/src/bin/node_bench.rs):
#   burst  200 items → (a) spec.replicas at 10, (b) 10 pods Running, (c) first item processed
#          by a new pod, (d) queue drained; seconds from the RPUSH
#   drain  1000 items × 1 s, at most 20 pods: drained, against the limit of 50 s (ratio)
# Each line carries the load average before and after. Needs root (the node).
#
#   bench/node/run.sh [--autoscalers dojo,metrics-api,operator]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

build_ebb
scripts/control-plane.sh build >/dev/null
echo "== image"
scripts/image.sh build ebb
echo "== node bench (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
cargo run --release --locked --quiet -p ebb-e2e --bin node-bench -- \
  --image target/image/ebb.oci.tar --ebb "$ebb" "$@"
