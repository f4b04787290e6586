#!/usr/bin/env bash
# ebb metrics-api against the dojo chain, side by side in one run on one loopback control plane:
#   latency   p50/p99 of the dojo's metric request over kept-alive TLS at a fixed rate (default
#             1,000/s straight to each server, 200/s through the kube-apiserver), ebb against
#             prometheus-adapter (built from its Go module, configured as the dojo's, backed by
#             the Debian Prometheus);
#   memory    resident set (and peak) of each server after its runs;
#   reaction  100 items pushed ─▶ the metric API reads 100 (metric_seconds), and ─▶ the consumer
#             chart's HPA desiredReplicas and the Deployment's spec.replicas at 5
#             (scale_up_seconds), through the dojo chain (redis_exporter → Prometheus → rule →
#             adapter), then through ebb metrics-api, same HPA; round k of n pushes (k - 1/2)/n of
#             the HPA's 5 s sync period after the sync that scaled to 0, the same offsets on both
#             sides (pushing right after a sync would hide any source faster than one period).
#             Two HPA variants, each the same on both sides: `default` (the chart's, as the dojo
#             has it: no behavior, so 0 → 4 → 5 over two syncs) and `one-sync` (the chart's
#             autoscaling.hpaBehavior with a scale-up of 20 pods per 15 s: 0 → 5 in one sync).
# --rounds 0 skips the reaction (latency and memory only).
# Ratios are ebb / reference (below 1: ebb faster or smaller); the load average is printed beside
# every figure (the machine is shared: compare within a run).
#
# A second straight run at --low-rate (100/s) shows both where prometheus-adapter keeps up.
#
#   bench/metrics-api/run.sh [--rate 1000] [--low-rate 100] [--apiserver-rate 200] [--seconds 20] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

scripts/control-plane.sh build >&2
echo "== building ebb and the bench driver (release)" >&2
cargo build --release --locked -q -p ebb -p ebb-e2e --bin ebb --bin metrics-api-bench
release="${CARGO_TARGET_DIR:-target}/release"
results="$bench_work/results"
"$release/metrics-api-bench" --ebb "$release/ebb" --hpa-variants default,one-sync "$@" | tee "$results"

field() { # line-selector key
  grep -- "$1" "$results" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
mean() { awk '{ s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "n/a" }'; }

echo
echo "metrics-api vs the dojo chain ($(date -u +%FT%TZ), loadavg now $(cut -d' ' -f1-3 /proc/loadavg)):"
for via in "" "-low-rate" "-via-apiserver"; do
  ebb_line="latency server=ebb$via "
  ref_line="latency server=prometheus-adapter$via "
  for quantile in p50_ms p99_ms; do
    ebb_value=$(field "$ebb_line" "$quantile")
    ref_value=$(field "$ref_line" "$quantile")
    printf "  latency%-15s %-6s ebb %8s ms   adapter %8s ms   ratio %s   (achieved %s / %s req/s; loadavg %s / %s)\n" \
      "${via:- straight}" "$quantile" "$ebb_value" "$ref_value" "$(ratio "$ebb_value" "$ref_value")" \
      "$(field "$ebb_line" rate)" "$(field "$ref_line" rate)" \
      "$(field "$ebb_line" loadavg)" "$(field "$ref_line" loadavg)"
  done
done
ebb_rss=$(field "memory server=ebb " rss_kib)
ref_rss=$(field "memory server=prometheus-adapter " rss_kib)
printf "  memory RSS            ebb %6s KiB   adapter %6s KiB   ratio %s   (peak %s / %s KiB)\n" \
  "$ebb_rss" "$ref_rss" "$(ratio "$ebb_rss" "$ref_rss")" \
  "$(field "memory server=ebb " peak_kib)" "$(field "memory server=prometheus-adapter " peak_kib)"
printf "  SubjectAccessReviews during the straight runs: %s waited for by a request, %s refreshed ahead\n" \
  "$(field "reviews server=ebb " waited_by_request)" "$(field "reviews server=ebb " background)"
for hpa in default one-sync; do
  grep -q -- "chain=ebb hpa=$hpa " "$results" || continue
  for phase in metric_seconds scale_up_seconds scale_down_seconds; do
    ebb_value=$(field "chain=ebb hpa=$hpa .*$phase" "$phase" | mean)
    ref_value=$(field "chain=dojo hpa=$hpa .*$phase" "$phase" | mean)
    printf "  reaction (HPA %-8s) %-18s ebb %6s s   dojo chain %6s s   ratio %s   (mean of rounds; loadavg %s / %s)\n" \
      "$hpa" "$phase" "$ebb_value" "$ref_value" "$(ratio "$ebb_value" "$ref_value")" \
      "$(field "chain=ebb hpa=$hpa .*$phase" loadavg | tail -1)" "$(field "chain=dojo hpa=$hpa .*$phase" loadavg | tail -1)"
  done
done
