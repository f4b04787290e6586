#!/usr/bin/env bash
# Benchmarks ebb's producer and consumer side by side with their references on the same
# throwaway redis-server, and prints each result as a ratio to its reference, with the goal
# and the load average:
# - redis-benchmark for the producer, pushing values of the size of one of ebb's encoded items
#   (-d, measured from an item the producer pushed), so both move the same bytes;
# - the dojo's Go consumer (bench/queue/dojo: go-redis, BLPOP and a count, built through the
#   Go module proxy) for the consumer, on the same items;
# - the dojo's Go producer (the same program) for the RSS at rest.
#
# Each round measures every figure and its reference back to back (the batch three times; the
# two consumers in alternating order); each run is printed with its load average, and the
# table shows the median of the rounds, and of the 1-minute load averages read during them.
#
#   bench/queue/run.sh            # defaults
#   ROUNDS=5 BATCH=100000 WRK_SECONDS=5 CONSUMER_ITEMS=50000 REST_SECONDS=5 bench/queue/run.sh
#   CONSUMER_ONLY=1 bench/queue/run.sh   # the RSS at rest and the consumers only
set -euo pipefail
cd "$(dirname "$0")/../.."

BATCH=${BATCH:-100000}
WRK_SECONDS=${WRK_SECONDS:-5}
CONSUMER_ITEMS=${CONSUMER_ITEMS:-50000}
ROUNDS=${ROUNDS:-5}
REST_SECONDS=${REST_SECONDS:-5}
CONSUMER_ONLY=${CONSUMER_ONLY:-0}
# The RSS goal at rest, in MB, for the producer and the consumer each.
RSS_GOAL_MB=8

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_header "$@"
build_ebb
work=$bench_work
echo "== building the dojo's Go producer and consumer (bench/queue/dojo)"
(cd bench/queue/dojo && GOFLAGS=-mod=mod go build -o "$work/dojo" .)
dojo=$work/dojo
start_redis
rcli() { redis-cli -p "$redis_port" "$@"; }

load1() { cut -d' ' -f1 /proc/loadavg; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# redis-benchmark's requests per second for RPUSH of item-sized values, with extra options.
redis_rpush_rps() {
  rcli FLUSHALL >/dev/null
  redis-benchmark -p "$redis_port" -t rpush -d "$item_bytes" --csv "$@" | awk -F'"' '$2 == "RPUSH" { print $4 }'
}

# Starts a server and waits until it is ready; sets $port, $pid and $ready_at (when it first
# answered). Both programs take the dojo's flags.
start_server() { # name, program and its args…
  port=""
  ebb_free_port port
  EBB_LOG=warn "${@:2}" --redis-server "127.0.0.1:$redis_port" --http "127.0.0.1:$port" \
    >"$work/$1.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  wait_http "http://127.0.0.1:$port/healthz"
  ready_at=$(now)
}
start_ebb() { start_server "$1" "$ebb" "${@:2}"; }
start_dojo() { start_server "$1" "$dojo" "${@:2}"; }
stop_server() { # pid
  kill "$1"
  wait "$1" 2>/dev/null || true
}

# Sleeps until $2 seconds after the moment $1 (seconds since the epoch).
sleep_until() { sleep "$(awk -v t="$1" -v d="$2" -v n="$(now)" 'BEGIN { w = t + d - n; print (w > 0 ? w : 0) }')"; }

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

echo "== RSS at rest: fresh processes, no traffic, ${REST_SECONDS}s after each answered /healthz"
start_ebb producer producer
producer_port=$port producer_pid=$pid producer_ready=$ready_at
start_ebb consumer consumer --per-msg 0
consumer_pid=$pid consumer_ready=$ready_at
start_dojo dojo_producer producer
dojo_producer_pid=$pid dojo_producer_ready=$ready_at
start_dojo dojo_consumer consumer -per-msg 0 -log=false
dojo_consumer_pid=$pid dojo_consumer_ready=$ready_at
rest_rss() { # name, pid, ready at
  sleep_until "$3" "$REST_SECONDS"
  rss_mb "$2" >"$work/$1.rss"
  printf '  %-22s %9s MB   (VmRSS; RssFile %s MB; load %s)\n' "$1" "$(cat "$work/$1.rss")" \
    "$(awk '/^RssFile/ { printf "%.1f", $2 / 1024 }' "/proc/$2/status")" "$(load)"
}
rest_rss producer "$producer_pid" "$producer_ready"
rest_rss consumer "$consumer_pid" "$consumer_ready"
rest_rss dojo_producer "$dojo_producer_pid" "$dojo_producer_ready"
rest_rss dojo_consumer "$dojo_consumer_pid" "$dojo_consumer_ready"
rss_load=$(load1)
# Each round starts its own consumers: one left running would take items and CPU meanwhile.
for pid in "$consumer_pid" "$dojo_consumer_pid" "$dojo_producer_pid"; do stop_server "$pid"; done

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
consumed() { # port: the consumer's count, the same metric for both programs
  curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^consumer_messages_consumed_total/ { printf "%.0f", $2 }'
}

# Items/s of one consumer on $CONSUMER_ITEMS items, all waiting when it starts taking them.
consumer_run() { # figure name, start function, its args…
  rcli DEL padok >/dev/null
  "${@:2}"
  local port=$port pid=$pid started finished
  # Frozen while the items are pushed, so the clock starts with every item waiting.
  kill -STOP "$pid"
  curl -fsS -o /dev/null -X POST "$publish_url/$CONSUMER_ITEMS"
  started=$(now)
  kill -CONT "$pid"
  for _ in $(seq 6000); do
    [ "$(consumed "$port")" -ge "$CONSUMER_ITEMS" ] && break
    sleep 0.02
  done
  finished=$(now)
  [ "$(consumed "$port")" -ge "$CONSUMER_ITEMS" ] || { echo "bench: $1 did not finish in 2 minutes" >&2; exit 1; }
  stop_server "$pid"
  record "$1" "$(awk -v n="$CONSUMER_ITEMS" -v a="$started" -v b="$finished" 'BEGIN { printf "%.0f", n / (b - a) }')"
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"

  if [ "$CONSUMER_ONLY" != 1 ]; then
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
  fi

  # The same items for both, back to back, the order alternating from round to round.
  consumers=(ebb_consumer dojo_consumer)
  [ $((round % 2)) = 0 ] && consumers=(dojo_consumer ebb_consumer)
  for consumer in "${consumers[@]}"; do
    case $consumer in
      ebb_consumer) consumer_run consumer start_ebb consumer consumer --per-msg 0 ;;
      dojo_consumer) consumer_run dojo_consumer start_dojo dojo_consumer consumer -per-msg 0 -log=false ;;
    esac
  done
done

if [ "$CONSUMER_ONLY" != 1 ]; then
  row "POST /publish/$BATCH (items/s)" batch batch_reference "items/s" 0.8
  row "  vs one RPUSH per item, 1 connection" batch one_connection "items/s" 1
  row "POST /publish, 32 conns (req/s)" single single_reference "req/s" 0.6
fi
row "consumer --per-msg 0 (items/s)" consumer dojo_consumer "items/s" 1
[ "$CONSUMER_ONLY" != 1 ] && row "  vs one RPUSH per item, 1 connection" consumer one_connection "items/s" 0.4

echo
echo "references: redis-benchmark -t rpush -d $item_bytes with -P 64 -c 50 for the batch, -c 32"
echo "for POST /publish, -c 1 -P 1 (one round trip per item, the dojo producer's design) for the"
echo "rows 'vs one RPUSH per item'; the dojo's Go consumer (BLPOP, count) for the consumer, and"
echo "its Go producer for the RSS at rest. Medians of $ROUNDS rounds; load = median 1-min load."
printf '%-40s %11s %11s %-8s %6s %7s %4s %6s\n' "measurement" "ebb" "reference" "unit" "ratio" "goal" "met" "load"
printf '%s\n' "${rows[@]}"
for side in producer consumer; do
  awk -v e="$(cat "$work/$side.rss")" -v r="$(cat "$work/dojo_$side.rss")" -v g="$RSS_GOAL_MB" \
    -v l="$rss_load" -v side="$side" 'BEGIN {
    printf "%-40s %11.1f %11.1f %-8s %6.2f %7s %4s %6s\n", "RSS at rest, " side " (MB)", e, r, "MB",
      e / r, "< " g " MB", (e < g ? "yes" : "NO"), l
  }'
done
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
