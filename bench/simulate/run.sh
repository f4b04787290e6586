#!/usr/bin/env bash
# Benchmark: ebb against the dojo's HPA pipeline on every built-in scenario of
# `ebb simulate`, side by side in the same run. Prints drain time, p95 item latency and
# replica-seconds for both policies, and the ratio ebb / hpa-pipeline (below 1: ebb better).
#
# Usage: bench/simulate/run.sh [SEED]
#   EBB_BIN=path/to/ebb   use this binary instead of building target/debug/ebb
#   BENCH_OUT=dir         keep each scenario's timeline.csv, chart.svg and summary.csv there
#   EBB_SIMULATE_*        any `ebb simulate` flag of the simulated world, e.g. EBB_SIMULATE_STARTUP=5s
#   EBB_*                 the scaler's flags, named as for `ebb up`, e.g. EBB_DRAIN_TIME=30s
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seed="${1:-1}"

ebb="${EBB_BIN:-}"
if [ -z "$ebb" ]; then
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p ebb
  ebb="$root/target/debug/ebb"
fi

if [ -n "${BENCH_OUT:-}" ]; then
  out="$BENCH_OUT"
  mkdir -p "$out"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

printf 'ebb simulate, seed %s: ebb vs hpa-pipeline (ratio = ebb / hpa-pipeline, lower is better)\n' "$seed"
# Simulated time: the figures do not depend on the load, printed all the same.
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s | %8s %8s %6s | %8s %8s %6s | %10s %10s %6s\n' \
  scenario "drain s" "" "" "p95 s" "" "" "replica·s" "" ""
printf '%-8s | %8s %8s %6s | %8s %8s %6s | %10s %10s %6s\n' \
  "" ebb hpa ratio ebb hpa ratio ebb hpa ratio
for scenario in burst ramp diurnal spiky; do
  "$ebb" simulate --scenario "$scenario" --seed "$seed" --out "$out/$scenario" >/dev/null
  # summary.csv columns: scenario,policy,items,drain_seconds,latency_p50_seconds,
  # latency_p95_seconds,latency_max_seconds,replica_seconds,scale_events,peak_replicas
  awk -F, -v scenario="$scenario" '
    function ratio(a, b) { return (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) ? sprintf("%.2f", a / b) : "—" }
    NR > 1 { drain[$2] = $4; p95[$2] = $6; cost[$2] = $8 }
    END {
      e = "ebb"; h = "hpa-pipeline"
      printf "%-8s | %8s %8s %6s | %8s %8s %6s | %10s %10s %6s\n", scenario,
        drain[e], drain[h], ratio(drain[e], drain[h]),
        p95[e], p95[h], ratio(p95[e], p95[h]),
        cost[e], cost[h], ratio(cost[e], cost[h])
    }' "$out/$scenario/summary.csv"
done
if [ -n "${BENCH_OUT:-}" ]; then
  printf 'charts: %s/<scenario>/chart.svg\n' "$out"
fi
