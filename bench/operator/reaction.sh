#!/usr/bin/env bash
# Reaction time of `ebb operator` on the loopback control plane, polling and woken by keyspace
# notifications, against `ebb metrics-api` + HPA and the dojo chain in the same run, printed as
# ratios:
#   200 items RPUSHed ─▶ the Deployment's spec.replicas first reads 10 (a watch, stamped as each
#   event arrives); then the list is deleted and the next round starts once it reads 0.
# The QueueScaler polls every second (the default) with cooldownSeconds 0 and a scale-down
# stabilization window of 0 so that rounds are quick. The operator runs twice: first on a Redis
# that sends no keyspace notifications (polling alone), then restarted with
# --enable-keyspace-events (a push wakes the scaler; polling stays the net).
# The two HPA-driven columns come from crates/e2e/src/bin/metrics_api_bench.rs --reaction-only
# (the driver of bench/metrics-api/run.sh), on a control plane of its own with the consumer
# chart's HPA unchanged: first the dojo chain (redis_exporter → Prometheus → prometheus-adapter →
# HPA), then `ebb metrics-api` serving the same metric to the same HPA, the same 200 items → 10
# (HPA desiredReplicas and Deployment spec.replicas, polled). Round k of n pushes (k - 1/2)/n of
# the HPA's 5 s sync period after the sync that scaled to 0, the same offsets on both sides
# (bench/metrics-api/RESULTS.md: pushing right after a sync hides any source under one period).
#
#   bench/operator/reaction.sh [--rounds 5] [--skip-hpa]
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/operator/common.sh
bench_header "$@"

rounds=5
run_hpa=1
while (($#)); do
  case "$1" in
  --rounds)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "reaction.sh: --rounds needs a positive integer" >&2; exit 2; }
    rounds=$2
    shift 2
    ;;
  --skip-hpa) run_hpa=0 && shift ;;
  *) echo "reaction.sh: unknown argument $1 (usage: $0 [--rounds N] [--skip-hpa])" >&2 && exit 2 ;;
  esac
done
items=200
target=10

build_ebb
scripts/control-plane.sh build >&2
if ((run_hpa)); then cargo build -q --locked -p ebb-e2e --bin metrics-api-bench; fi

# p<percent> of numbers, one per line (nearest rank).
percentile() {
  sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# ── the operator ──────────────────────────────────────────────────────────────
start_control_plane reaction
start_redis
install_queuescaler_crd
apply <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer, namespace: default}
spec:
  replicas: 0
  selector: {matchLabels: {app: consumer}}
  template:
    metadata: {labels: {app: consumer}}
    spec:
      containers: [{name: consumer, image: "ebb:bench"}]
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {name: consumer, namespace: default}
spec:
  scaleTargetRef: {name: consumer}
  source: {redisList: {redis: {address: "127.0.0.1:$redis_port"}, key: padok}}
  pollingIntervalSeconds: 1
  cooldownSeconds: 0
  behavior:
    scaleDown: {stabilizationWindowSeconds: 0}
YAML

events="$bench_work/deployment.watch"
watch_replicas "$events" deployment consumer -o 'jsonpath={.spec.replicas}{"\n"}'

# wait_for_replicas <count> <since> <timeout s>: prints the stamp of the first event at or after
# <since> where spec.replicas reads <count>.
wait_for_replicas() {
  local deadline=$((SECONDS + $3)) stamp
  while ((SECONDS < deadline)); do
    stamp=$(awk -v want="$1" -v since="$2" '$1 >= since && $2 == want { print $1; exit }' "$events")
    [ -n "$stamp" ] && { echo "$stamp"; return; }
    sleep 0.01
  done
  echo "reaction.sh: spec.replicas never read $1 within $3 s; operator log: $operator_log" >&2
  tail -20 "$operator_log" >&2
  exit 1
}

rcli() { redis-cli -p "$redis_port" "$@" >/dev/null; }
payload=()
for ((i = 0; i < items; i++)); do payload+=("item-$i"); done

# operator_rounds <mode> <description> [operator args…]: starts the operator, runs the rounds,
# stops it; sets p50[<mode>], p95[<mode>], loads[<mode>] and rss[<mode>].
declare -A p50 p95 loads rss
operator_rounds() {
  local mode="$1" description="$2" seconds="$bench_work/$1.seconds" round pushed seen up emptied
  shift 2
  start_operator "$@"
  "$kubectl" wait --for=condition=Ready --timeout=60s queuescaler/consumer >/dev/null
  if [ "$mode" = events ]; then
    # Woken only once subscribed: the operator turns notifications on, then subscribes.
    for _ in $(seq 100); do
      [ "$(redis-cli -p "$redis_port" PUBSUB NUMPAT)" != 0 ] && break
      sleep 0.1
    done
    [ "$(redis-cli -p "$redis_port" PUBSUB NUMPAT)" != 0 ] ||
      { echo "reaction.sh: the operator never subscribed to keyspace notifications" >&2; exit 1; }
  fi
  echo "== operator, $description: $rounds rounds of $items items → $target replicas"
  wait_for_replicas 0 0 30 >/dev/null
  for ((round = 1; round <= rounds; round++)); do
    # A round starts at a random phase of the polling tick, as a real push does.
    sleep "0.$((RANDOM % 10))"
    pushed=$EPOCHREALTIME
    rcli RPUSH padok "${payload[@]}"
    seen=$(wait_for_replicas "$target" "$pushed" 30)
    up=$(awk -v a="$seen" -v b="$pushed" 'BEGIN { printf "%.3f", a - b }')
    echo "$up" >>"$seconds"
    echo "  round $round: up to $target in $up s   (load $(load))"
    emptied=$EPOCHREALTIME
    rcli DEL padok
    wait_for_replicas 0 "$emptied" 30 >/dev/null
  done
  loads[$mode]=$(load)
  p50[$mode]=$(percentile 50 <"$seconds")
  p95[$mode]=$(percentile 95 <"$seconds")
  rss[$mode]=$(operator_rss_kb)
  stop_operator # it releases its Lease on SIGTERM: the API server must still be up
}
operator_rounds polling "polling every 1 s"
operator_rounds events "keyspace notifications (--enable-keyspace-events), polling every 1 s as the net" \
  --enable-keyspace-events
# shellcheck disable=SC2154 # set by watch_replicas (common.sh)
kill "$watch_pid" 2>/dev/null || true
scripts/control-plane.sh down >/dev/null
unset EBB_CONTROL_PLANE_DIR

# ── the same HPA: through the dojo chain (the reference), then through ebb metrics-api ──────
if ((run_hpa)); then
  echo "== dojo chain, then ebb metrics-api, same HPA: $rounds rounds each of $items items → $target replicas"
  hpa_out="$bench_work/hpa.out"
  "$cargo_target/debug/metrics-api-bench" --ebb "$ebb" --reaction-only --items "$items" --rounds "$rounds" |
    tee "$hpa_out" | sed -u 's/^/  /'
  # <chain> <key>: that key's value on each of the chain's scale-up lines.
  hpa_field() {
    awk -v chain="chain=$1" -v key="$2=" '$2 == chain && /scale_up_seconds=/ {
      for (i = 3; i <= NF; i++) if (index($i, key) == 1) print substr($i, length(key) + 1)
    }' "$hpa_out"
  }
  for chain in dojo ebb; do
    hpa_field "$chain" scale_up_seconds >"$bench_work/$chain.seconds"
    [ -s "$bench_work/$chain.seconds" ] ||
      { echo "reaction.sh: metrics-api-bench printed no scale-up of chain=$chain" >&2; exit 1; }
    # The load average when the chain's last round reached the target, as the bench printed it.
    loads[hpa-$chain]=$(hpa_field "$chain" loadavg | tail -1 | tr , ' ')
    p50[hpa-$chain]=$(percentile 50 <"$bench_work/$chain.seconds")
    p95[hpa-$chain]=$(percentile 95 <"$bench_work/$chain.seconds")
  done
fi

verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v != "n/a" && v < g ? "met" : "MISSED") }'; }
echo
echo "reaction, $items items → spec.replicas $target, $rounds rounds:"
printf '  %-44s p50 %6s s  p95 %6s s   (load %s, RSS %s kB)\n' \
  "ebb operator, polling every 1 s" "${p50[polling]}" "${p95[polling]}" "${loads[polling]}" "${rss[polling]}"
echo "    goal p95 < interval + 0.2 s = 1.2 s: $(verdict "${p95[polling]}" 1.2)"
printf '  %-44s p50 %6s s  p95 %6s s   (load %s, RSS %s kB)\n' \
  "ebb operator, keyspace notifications" "${p50[events]}" "${p95[events]}" "${loads[events]}" "${rss[events]}"
echo "    goal p95 < 0.3 s: $(verdict "${p95[events]}" 0.3)"
echo "  ratio polling / notifications: p50 $(ratio "${p50[polling]}" "${p50[events]}")×  p95 $(ratio "${p95[polling]}" "${p95[events]}")×"
if ((run_hpa)); then
  printf '  %-44s p50 %6s s  p95 %6s s   (load %s)\n' \
    "ebb metrics-api + the consumer chart's HPA" "${p50[hpa-ebb]}" "${p95[hpa-ebb]}" "${loads[hpa-ebb]}"
  printf '  %-44s p50 %6s s  p95 %6s s   (load %s)\n' \
    "dojo chain (exporter → Prometheus → adapter → HPA)" "${p50[hpa-dojo]}" "${p95[hpa-dojo]}" "${loads[hpa-dojo]}"
  dojo_p50=${p50[hpa-dojo]}
  dojo_p95=${p95[hpa-dojo]}
  for mode in polling events; do
    p95_ratio=$(ratio "$dojo_p95" "${p95[$mode]}")
    tenfold=$(awk -v r="$p95_ratio" 'BEGIN { print (r >= 10 ? "met" : "MISSED") }')
    echo "  ratio dojo / operator ($mode): p50 $(ratio "$dojo_p50" "${p50[$mode]}")×  p95 ${p95_ratio}×   (goal ≥ 10×: $tenfold)"
  done
  echo "  ratio dojo / metrics-api + HPA: p50 $(ratio "$dojo_p50" "${p50[hpa-ebb]}")×  p95 $(ratio "$dojo_p95" "${p95[hpa-ebb]}")×"
  for mode in polling events; do
    echo "  ratio metrics-api + HPA / operator ($mode): p50 $(ratio "${p50[hpa-ebb]}" "${p50[$mode]}")×  p95 $(ratio "${p95[hpa-ebb]}" "${p95[$mode]}")×"
  done
else
  echo "  dojo chain and ebb metrics-api + HPA: skipped (--skip-hpa), no ratio"
fi
