#!/usr/bin/env bash
# Reaction time of `ebb operator` on the loopback control plane, polling and woken by keyspace
# notifications, against the dojo chain in the same run, printed as ratios:
#   200 items RPUSHed ─▶ the Deployment's spec.replicas first reads 10 (a watch, stamped as each
#   event arrives); then the list is deleted and the next round starts once it reads 0.
# The QueueScaler polls every second (the default) with cooldownSeconds 0 and a scale-down
# stabilization window of 0 so that rounds are quick. The operator runs twice: first on a Redis
# that sends no keyspace notifications (polling alone), then restarted with
# --enable-keyspace-events (a push wakes the scaler; polling stays the net). The dojo chain is
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
if ((run_dojo)); then
  printf '  %-44s p50 %6s s  p95 %6s s   (load %s)\n' \
    "dojo chain (exporter → Prometheus → adapter → HPA)" "$dojo_p50" "$dojo_p95" "$dojo_load"
  for mode in polling events; do
    p95_ratio=$(ratio "$dojo_p95" "${p95[$mode]}")
    tenfold=$(awk -v r="$p95_ratio" 'BEGIN { print (r >= 10 ? "met" : "MISSED") }')
    echo "  ratio dojo / operator ($mode): p50 $(ratio "$dojo_p50" "${p50[$mode]}")×  p95 ${p95_ratio}×   (goal ≥ 10×: $tenfold)"
  done
else
  echo "  dojo chain: skipped (--skip-dojo), no ratio"
fi
echo "  not measured, it is not on main yet: ebb metrics-api + HPA"
