#!/usr/bin/env bash
# Benchmarks ebb's producer and consumer side by side with redis-benchmark on the same
# throwaway redis-server, and prints each result as a ratio to its reference, with the goal.
#
#   bench/queue/run.sh            # defaults
#   BATCH=100000 WRK_SECONDS=5 CONSUMER_ITEMS=50000 bench/queue/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

BATCH=${BATCH:-100000}
WRK_SECONDS=${WRK_SECONDS:-5}
CONSUMER_ITEMS=${CONSUMER_ITEMS:-50000}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/lib.sh
source bench/lib.sh
build_ebb
work=$bench_work
start_redis
rcli() { redis-cli -p "$redis_port" "$@"; }

# redis-benchmark's requests per second for RPUSH with extra options.
redis_rpush_rps() {
  rcli FLUSHALL >/dev/null
  redis-benchmark -p "$redis_port" -t rpush --csv "$@" | awk -F'"' '$2 == "RPUSH" { print $4 }'
}

# Median of numbers, one per line.

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

start_ebb() { # name, subcommand args… ; sets $port and $pid
  port=""
  ebb_free_port port
  EBB_LOG=warn "$ebb" "${@:2}" --redis-server "127.0.0.1:$redis_port" --http "127.0.0.1:$port" \
    >"$work/$1.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  wait_http "http://127.0.0.1:$port/healthz"
}

rows=()
row() { # name, ebb value, reference value, unit, goal ratio
  local ratio verdict
  ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')
  verdict=$(awk -v r="$ratio" -v g="$5" 'BEGIN { print (r >= g ? "yes" : "NO") }')
  rows+=("$(printf '%-34s %12.0f %12.0f %-8s %6s %8s %5s' "$1" "$2" "$3" "$4" "$ratio" ">= $5" "$verdict")")
}

echo "== idle RSS (fresh processes)"
start_ebb producer producer
producer_port=$port producer_pid=$pid
start_ebb consumer consumer --per-msg 0
consumer_port=$port consumer_pid=$pid
sleep 2
producer_rss=$(rss_mb "$producer_pid")
consumer_rss=$(rss_mb "$consumer_pid")

echo "== POST /publish/$BATCH vs redis-benchmark -P 64 -t rpush"
kill "$consumer_pid"
wait "$consumer_pid" 2>/dev/null || true
batch_rates=$(for _ in $(seq "$ROUNDS"); do
  rcli DEL padok >/dev/null
  seconds=$(curl -fsS -o /dev/null -w '%{time_total}' -X POST "http://127.0.0.1:$producer_port/publish/$BATCH")
  awk -v n="$BATCH" -v s="$seconds" 'BEGIN { printf "%.0f\n", n / s }'
done | median)
[ "$(rcli LLEN padok)" = "$BATCH" ] || { echo "bench: batch not fully pushed" >&2; exit 1; }
batch_reference=$(for _ in $(seq "$ROUNDS"); do redis_rpush_rps -P 64 -n 1000000 -c 50; done | median)
row "POST /publish/$BATCH (items/s)" "$batch_rates" "$batch_reference" "items/s" 0.5

echo "== POST /publish under wrk -c 32 vs redis-benchmark -c 32 -t rpush"
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
LUA
rcli DEL padok >/dev/null
publish_rps=$(wrk -t 2 -c 32 -d "${WRK_SECONDS}s" -s "$work/post.lua" "http://127.0.0.1:$producer_port/publish" |
  awk '/^Requests\/sec/ { print $2 }')
grep -q . <<<"$publish_rps" || { echo "bench: wrk gave no rate" >&2; exit 1; }
publish_reference=$(redis_rpush_rps -c 32 -n 300000)
row "POST /publish, 32 conns (req/s)" "$publish_rps" "$publish_reference" "req/s" 0.5

echo "== one consumer --per-msg 0 vs redis-benchmark -c 1 -t rpush"
rcli DEL padok >/dev/null
start_ebb consumer consumer --per-msg 0
consumer_port=$port consumer_pid=$pid
# Frozen while the items are pushed, so the clock starts with every item waiting.
kill -STOP "$consumer_pid"
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$producer_port/publish/$CONSUMER_ITEMS"
consumed() { curl -fsS "http://127.0.0.1:$consumer_port/metrics" | awk '/^consumer_messages_consumed_total/ { print $2 }'; }
started=$(date +%s.%N)
kill -CONT "$consumer_pid"
until [ "$(consumed)" -ge "$CONSUMER_ITEMS" ]; do sleep 0.1; done
finished=$(date +%s.%N)
consumer_rate=$(awk -v n="$CONSUMER_ITEMS" -v a="$started" -v b="$finished" 'BEGIN { printf "%.0f", n / (b - a) }')
consumer_reference=$(redis_rpush_rps -c 1 -n 100000)
row "consumer --per-msg 0 (items/s)" "$consumer_rate" "$consumer_reference" "items/s" 0.4

echo
printf '%-34s %12s %12s %-8s %6s %8s %5s\n' "measurement" "ebb" "reference" "unit" "ratio" "goal" "met"
printf '%s\n' "${rows[@]}"
awk -v p="$producer_rss" -v c="$consumer_rss" 'BEGIN {
  printf "%-34s %12.1f %12s %-8s %6s %8s %5s\n", "idle RSS, producer (MB)", p, "-", "MB", "-", "< 15", (p < 15 ? "yes" : "NO")
  printf "%-34s %12.1f %12s %-8s %6s %8s %5s\n", "idle RSS, consumer (MB)", c, "-", "MB", "-", "< 15", (c < 15 ? "yes" : "NO")
}'
