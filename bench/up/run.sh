#!/usr/bin/env bash
# Benchmarks `ebb up` end to end with real processes, and prints each figure against its
# reference as a ratio:
#   - reaction: 200 items land on an idle system → 10 consumers registered on the queue,
#     against the 1.5 s goal;
#   - drain: 1000 items at 1 s each with max 20 replicas, publish → all processed, against the
#     physical limit 1000 / 20 × 1 s = 50 s (goal: ratio ≤ 1.15).
#
#   bench/up/run.sh                 # both, 3 reaction rounds
#   ROUNDS=5 SKIP_DRAIN=1 bench/up/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_header "$@"
build_ebb

ROUNDS=${ROUNDS:-3}
DRAIN_ITEMS=${DRAIN_ITEMS:-1000}
MAX_REPLICAS=20

start_redis
rcli() { redis-cli -p "$redis_port" "$@"; }

# Starts `ebb up` on the shared Redis with extra flags; sets up_pid, http, admin.
start_up() {
  http="" admin=""
  ebb_free_port http
  ebb_free_port admin
  "$ebb" up --view plain --http "127.0.0.1:$http" --admin "127.0.0.1:$admin" \
    --redis-server "127.0.0.1:$redis_port" --max-replicas "$MAX_REPLICAS" "$@" \
    >"$bench_work/up-$http.log" 2>&1 &
  up_pid=$!
  bench_pids+=("$up_pid")
  wait_http "http://127.0.0.1:$admin/healthz"
  wait_http "http://127.0.0.1:$http/healthz"
}

stop_up() {
  kill -TERM "$up_pid"
  wait "$up_pid" || true
  rcli FLUSHALL >/dev/null
}

# Polls until `rcli "$@"` prints $want; prints the seconds it took since $start.
elapsed_until() { # start want redis-args...
  local start=$1 want=$2
  shift 2
  until [ "$(rcli "$@")" = "$want" ]; do sleep 0.01; done
  awk -v a="$(now)" -v b="$start" 'BEGIN { printf "%.3f", a - b }'
}

echo "== reaction: 200 items → 10 consumers registered on the queue ($ROUNDS rounds)"
reactions=()
for round in $(seq "$ROUNDS"); do
  start_up --per-msg 1s
  start=$(now)
  curl -fsS -X POST "http://127.0.0.1:$http/publish/200" >/dev/null
  seconds=$(elapsed_until "$start" 10 SCARD '{padok}:consumers')
  reactions+=("$seconds")
  echo "   round $round: ${seconds} s   (load $(load))"
  stop_up
done
reaction=$(printf '%s\n' "${reactions[@]}" | median)

drain=""
if [ -z "${SKIP_DRAIN:-}" ]; then
  echo "== drain: $DRAIN_ITEMS items at 1 s each, max $MAX_REPLICAS replicas"
  start_up --per-msg 1s
  start=$(now)
  curl -fsS -X POST "http://127.0.0.1:$http/publish/$DRAIN_ITEMS" >/dev/null
  # Drained = nothing waiting and nothing held by any consumer, as the scaler reads it
  # (every 250 ms): first the backlog shows up, then it is gone.
  backlog() { curl -fsS "http://127.0.0.1:$admin/status" | jq '.waiting + .in_flight'; }
  while [ "$(backlog)" = 0 ]; do sleep 0.05; done
  until [ "$(backlog)" = 0 ]; do sleep 0.05; done
  drain=$(awk -v a="$(now)" -v b="$start" 'BEGIN { printf "%.2f", a - b }')
  echo "   drained in ${drain} s   (load $(load))"
  stop_up
fi

limit=$(awk -v n="$DRAIN_ITEMS" -v r="$MAX_REPLICAS" 'BEGIN { printf "%.2f", n / r }')
echo
printf '%-44s %10s %12s %8s %s\n' "measure" "ebb up" "reference" "ratio" "goal"
printf '%-44s %9ss %11ss %8s %s\n' "reaction, 200 items → 10 consumers (median)" \
  "$reaction" "1.5" "$(ratio "$reaction" 1.5)" "≤ 1.00 (under 1.5 s)"
if [ -n "$drain" ]; then
  printf '%-44s %9ss %11ss %8s %s\n' "drain $DRAIN_ITEMS items × 1 s, max $MAX_REPLICAS" \
    "$drain" "$limit" "$(ratio "$drain" "$limit")" "≤ 1.15 (physical limit)"
fi
echo "load average now: $(load) on $(nproc) cores"
