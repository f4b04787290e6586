#!/usr/bin/env bash
# Benchmarks ebb's producer and consumer side by side with redis-benchmark on the same
# throwaway redis-server, and prints each result as a ratio to its reference, with the goal
# and the load average. redis-benchmark pushes values of the size of one of ebb's encoded items
# (-d, measured from an item the producer pushed), so both move the same bytes.
#
# Each round measures every figure and its reference back to back (the batch three times); the
# table shows the median of the rounds, and of the 1-minute load averages read during them.
#
#   bench/queue/run.sh            # defaults
#   ROUNDS=5 BATCH=100000 WRK_SECONDS=5 CONSUMER_ITEMS=50000 bench/queue/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

BATCH=${BATCH:-100000}
WRK_SECONDS=${WRK_SECONDS:-5}
CONSUMER_ITEMS=${CONSUMER_ITEMS:-50000}
ROUNDS=${ROUNDS:-5}

# shellcheck source=bench/lib.sh
source bench/lib.sh
build_ebb
work=$bench_work
start_redis
rcli() { redis-cli -p "$redis_port" "$@"; }

load1() { cut -d' ' -f1 /proc/loadavg; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# redis-benchmark's requests per second for RPUSH of item-sized values, with extra options.
redis_rpush_rps() {
  rcli FLUSHALL >/dev/null
  redis-benchmark -p "$redis_port" -t rpush -d "$item_bytes" --csv "$@" | awk -F'"' '$2 == "RPUSH" { print $4 }'
}

start_ebb() { # name, subcommand args… ; sets $port and $pid
  port=""
  ebb_free_port port
  EBB_LOG=warn "$ebb" "${@:2}" --redis-server "127.0.0.1:$redis_port" --http "127.0.0.1:$port" \
    >"$work/$1.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  wait_http "http://127.0.0.1:$port/healthz"
}

# One figure per round: record NAME VALUE appends VALUE and the current load to $work/NAME.
record() {
  echo "$2" >>"$work/$1.values"
  load1 >>"$work/$1.load"
  printf '  %-22s %12.0f   (load %s)\n' "$1" "$2" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
median_of() { median <"$work/$1.values"; }

rows=()
row() { # label, ebb figure name, reference figure name, unit, goal ratio
  local ebb_value reference ratio verdict load
  ebb_value=$(median_of "$2")
  reference=$(median_of "$3")
  ratio=$(ratio "$ebb_value" "$reference")
  verdict=$(awk -v r="$ratio" -v g="$5" 'BEGIN { print (r >= g ? "yes" : "NO") }')
  load=$(cat "$work/$2.load" "$work/$3.load" | median)
  rows+=("$(printf '%-40s %11.0f %11.0f %-8s %6s %7s %4s %6s' "$1" "$ebb_value" "$reference" "$4" \
    "$ratio" ">= $5" "$verdict" "$load")")
}

echo "== idle RSS (fresh processes)"
start_ebb producer producer
producer_port=$port producer_pid=$pid
start_ebb consumer consumer --per-msg 0
consumer_port=$port consumer_pid=$pid
sleep 2
producer_rss=$(rss_mb "$producer_pid")
consumer_rss=$(rss_mb "$consumer_pid")
rss_load=$(load1)
# Each round starts its own consumer: one left running would take items and CPU meanwhile.
kill "$consumer_pid"
wait "$consumer_pid" 2>/dev/null || true

echo "== item size"
rcli DEL padok >/dev/null
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$producer_port/publish"
item_bytes=$(rcli LINDEX padok 0 | tr -d '\n' | wc -c)
[ "$item_bytes" -gt 0 ] || { echo "bench: found no item to measure" >&2; exit 1; }
echo "  one encoded item is $item_bytes bytes: redis-benchmark -d $item_bytes"

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
LUA
publish_url="http://127.0.0.1:$producer_port/publish"
consumed() { curl -fsS "http://127.0.0.1:$consumer_port/metrics" | awk '/^consumer_messages_consumed_total/ { print $2 }'; }

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"

  # A batch takes a fraction of a second, its reference a few: three batches per round.
  for _ in 1 2 3; do
    rcli DEL padok >/dev/null
    seconds=$(curl -fsS -o /dev/null -w '%{time_total}' -X POST "$publish_url/$BATCH")
    [ "$(rcli LLEN padok)" = "$BATCH" ] || { echo "bench: batch not fully pushed" >&2; exit 1; }
    record batch "$(awk -v n="$BATCH" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')"
  done
  record batch_reference "$(redis_rpush_rps -P 64 -n 1000000 -c 50)"

  rcli DEL padok >/dev/null
  rps=$(wrk -t 2 -c 32 -d "${WRK_SECONDS}s" -s "$work/post.lua" "$publish_url" |
    awk '/^Requests\/sec/ { print $2 }')
  grep -q . <<<"$rps" || { echo "bench: wrk gave no rate" >&2; exit 1; }
  record single "$rps"
  record single_reference "$(redis_rpush_rps -c 32 -n 300000)"

  # One RPUSH round trip per item on one connection: the consumer's reference, and the
  # dojo producer's design for a batch.
  record one_connection "$(redis_rpush_rps -c 1 -P 1 -n 100000)"

  rcli DEL padok >/dev/null
  start_ebb consumer consumer --per-msg 0
  consumer_port=$port consumer_pid=$pid
  # Frozen while the items are pushed, so the clock starts with every item waiting.
  kill -STOP "$consumer_pid"
  curl -fsS -o /dev/null -X POST "$publish_url/$CONSUMER_ITEMS"
  started=$(now)
  kill -CONT "$consumer_pid"
  for _ in $(seq 2400); do
    [ "$(consumed)" -ge "$CONSUMER_ITEMS" ] && break
    sleep 0.05
  done
  finished=$(now)
  [ "$(consumed)" -ge "$CONSUMER_ITEMS" ] || { echo "bench: the consumer did not finish in 2 minutes" >&2; exit 1; }
  kill "$consumer_pid"
  wait "$consumer_pid" 2>/dev/null || true
  record consumer "$(awk -v n="$CONSUMER_ITEMS" -v a="$started" -v b="$finished" 'BEGIN { printf "%.0f", n / (b - a) }')"
done

row "POST /publish/$BATCH (items/s)" batch batch_reference "items/s" 0.8
row "  vs one RPUSH per item, 1 connection" batch one_connection "items/s" 1
row "POST /publish, 32 conns (req/s)" single single_reference "req/s" 0.6
row "consumer --per-msg 0 (items/s)" consumer one_connection "items/s" 0.4

echo
echo "references (redis-benchmark -t rpush -d $item_bytes): -P 64 -c 50 for the batch; -c 32 for"
echo "POST /publish; -c 1 -P 1 (one round trip per item, the dojo producer's design) for the"
echo "second row and the consumer. Medians of $ROUNDS rounds; load = median 1-min load average."
printf '%-40s %11s %11s %-8s %6s %7s %4s %6s\n' "measurement" "ebb" "reference" "unit" "ratio" "goal" "met" "load"
printf '%s\n' "${rows[@]}"
awk -v p="$producer_rss" -v c="$consumer_rss" -v l="$rss_load" 'BEGIN {
  printf "%-40s %11.1f %11s %-8s %6s %7s %4s %6s\n", "idle RSS, producer (MB)", p, "-", "MB", "-", "< 15", (p < 15 ? "yes" : "NO"), l
  printf "%-40s %11.1f %11s %-8s %6s %7s %4s %6s\n", "idle RSS, consumer (MB)", c, "-", "MB", "-", "< 15", (c < 15 ? "yes" : "NO"), l
}'
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
