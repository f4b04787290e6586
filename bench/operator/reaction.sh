#!/usr/bin/env bash
# Reaction time of `ebb operator` on the loopback control plane, against the dojo chain in the
# same run, printed as a ratio:
#   200 items RPUSHed ─▶ the Deployment's spec.replicas first reads 10 (a watch, stamped as each
#   event arrives); then the list is deleted and the next round starts once it reads 0.
# The QueueScaler polls every second (the default) with cooldownSeconds 0 and a scale-down
# stabilization window of 0 so that rounds are quick; the dojo chain is
# crates/e2e/src/bin/dojo_reaction.rs (redis_exporter → Prometheus → prometheus-adapter → HPA)
# with the same 200 items → 10.
#
#   bench/operator/reaction.sh [--rounds 5] [--skip-dojo]
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/operator/common.sh

rounds=5
run_dojo=1
while (($#)); do
  case "$1" in
  --rounds)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "reaction.sh: --rounds needs a positive integer" >&2; exit 2; }
    rounds=$2
    shift 2
    ;;
  --skip-dojo) run_dojo=0 && shift ;;
  *) echo "reaction.sh: unknown argument $1 (usage: $0 [--rounds N] [--skip-dojo])" >&2 && exit 2 ;;
  esac
done
items=200
target=10

build_ebb
scripts/control-plane.sh build >&2
if ((run_dojo)); then cargo build -q --locked -p ebb-e2e --bin dojo-reaction; fi

# p<percent> of numbers, one per line (nearest rank).
percentile() {
  sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# ── the operator ──────────────────────────────────────────────────────────────
start_control_plane
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
start_operator
"$kubectl" wait --for=condition=Ready --timeout=60s queuescaler/consumer >/dev/null

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

echo "== operator: $rounds rounds of $items items → $target replicas (polling every 1 s)"
wait_for_replicas 0 0 30 >/dev/null
operator_seconds="$bench_work/operator.seconds"
for ((round = 1; round <= rounds; round++)); do
  # A round starts at a random phase of the polling tick, as a real push does.
  sleep "0.$((RANDOM % 10))"
  pushed=$EPOCHREALTIME
  rcli RPUSH padok "${payload[@]}"
  seen=$(wait_for_replicas "$target" "$pushed" 30)
  up=$(awk -v a="$seen" -v b="$pushed" 'BEGIN { printf "%.3f", a - b }')
  echo "$up" >>"$operator_seconds"
  echo "  round $round: up to $target in $up s   (load $(load))"
  emptied=$EPOCHREALTIME
  rcli DEL padok
  wait_for_replicas 0 "$emptied" 30 >/dev/null
done
operator_load=$(load)
operator_p50=$(percentile 50 <"$operator_seconds")
operator_p95=$(percentile 95 <"$operator_seconds")
operator_rss=$(operator_rss_kb)
kill "$operator_pid" "$watch_pid" 2>/dev/null || true
wait "$operator_pid" 2>/dev/null || true # it releases its Lease on SIGTERM: the API server first
scripts/control-plane.sh down >/dev/null
unset EBB_CONTROL_PLANE_DIR

# ── the dojo chain, the reference ──────────────────────────────────────────────
if ((run_dojo)); then
  echo "== dojo chain: $rounds rounds of $items items → $target replicas"
  dojo_out="$bench_work/dojo.out"
  target/debug/dojo-reaction --items "$items" --rounds "$rounds" | tee "$dojo_out" | sed 's/^/  /'
  dojo_load=$(load)
  awk '/scale_up_to=/ { sub("seconds=", "", $NF); print $NF }' "$dojo_out" >"$bench_work/dojo.seconds"
  dojo_p50=$(percentile 50 <"$bench_work/dojo.seconds")
  dojo_p95=$(percentile 95 <"$bench_work/dojo.seconds")
fi

goal=$(awk -v p="$operator_p95" 'BEGIN { print (p < 1.2 ? "met" : "MISSED") }')
echo
echo "reaction, $items items → spec.replicas $target, $rounds rounds:"
printf '  %-44s p50 %6s s  p95 %6s s   (load %s, RSS %s kB)\n' \
  "ebb operator, polling every 1 s" "$operator_p50" "$operator_p95" "$operator_load" "$operator_rss"
echo "    goal p95 < interval + 0.2 s = 1.2 s: $goal"
if ((run_dojo)); then
  printf '  %-44s p50 %6s s  p95 %6s s   (load %s)\n' \
    "dojo chain (exporter → Prometheus → adapter → HPA)" "$dojo_p50" "$dojo_p95" "$dojo_load"
  p50_ratio=$(ratio "$dojo_p50" "$operator_p50")
  p95_ratio=$(ratio "$dojo_p95" "$operator_p95")
  tenfold=$(awk -v r="$p95_ratio" 'BEGIN { print (r >= 10 ? "met" : "MISSED") }')
  echo "  ratio dojo / operator: p50 ${p50_ratio}×  p95 ${p95_ratio}×   (goal ≥ 10×: $tenfold)"
else
  echo "  dojo chain: skipped (--skip-dojo), no ratio"
fi
echo "  not measured, they do not exist yet: the operator with keyspace notifications (goal p95 < 0.3 s),"
echo "  and ebb metrics-api + HPA"
