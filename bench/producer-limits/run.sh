#!/usr/bin/env bash
# The producer's memory under clients that all ask for the largest batch at once: CLIENTS
# clients each POST /publish/<max> with a 1-byte body ROUNDS times (the largest count whose
# encoded items fit --max-batch-bytes, 16 MiB by default: about 90 bytes an item). The
# in-flight budget (--max-in-flight-bytes, 96 MiB by default) answers 429 to what does not fit.
# Goal: peak RSS ≤ idle RSS + the budget + 16 MB, and the queue holds exactly the items of the
# publishes answered 200.
#
#   bench/producer-limits/run.sh
#   CLIENTS=8 ROUNDS=5 MAX_IN_FLIGHT=96MiB bench/producer-limits/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-8}
ROUNDS=${ROUNDS:-5}
MAX_BATCH_BYTES=${MAX_BATCH_BYTES:-16777216}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-100663296}
# One item's encoded size around a 1-byte body (crates/queue: Batch::item_len("x")).
ITEM_BYTES=90
COUNT=$((MAX_BATCH_BYTES / ITEM_BYTES))

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_header "$@"
build_ebb
start_redis

rss_kb() { awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"; }

port=""
ebb_free_port port
EBB_LOG=warn "$ebb" producer --http "127.0.0.1:$port" --redis-server "127.0.0.1:$redis_port" \
  --max-batch-bytes "$MAX_BATCH_BYTES" --max-in-flight-bytes "$MAX_IN_FLIGHT" \
  >"$bench_work/producer.log" 2>&1 &
producer=$!
bench_pids+=("$producer")
wait_http "http://127.0.0.1:$port/readyz"
idle_kb=$(rss_kb "$producer" VmRSS)

echo "== $CLIENTS clients × $ROUNDS rounds of POST /publish/$COUNT (1-byte body, $((COUNT * ITEM_BYTES)) encoded bytes)   (load $(load))"
started=$(now)
client() { # index
  for _ in $(seq "$ROUNDS"); do
    curl -sS -o /dev/null -w '%{http_code}\n' -X POST --data-binary x \
      "http://127.0.0.1:$port/publish/$COUNT" 2>/dev/null || echo 000
  done >"$bench_work/codes-$1"
}
clients=()
for index in $(seq "$CLIENTS"); do
  client "$index" &
  clients+=($!)
done
wait "${clients[@]}"
elapsed=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
peak_kb=$(rss_kb "$producer" VmHWM)

cat "$bench_work"/codes-* >"$bench_work/codes"
count_of() { grep -c "^$1\$" "$bench_work/codes" || true; }
ok=$(count_of 200)
busy=$(count_of 429)
total=$(wc -l <"$bench_work/codes")
other=$((total - ok - busy))
queued=$(redis-cli -p "$redis_port" LLEN padok)
expected=$((ok * COUNT))

idle_mb=$(awk -v k="$idle_kb" 'BEGIN { printf "%.1f", k / 1024 }')
peak_mb=$(awk -v k="$peak_kb" 'BEGIN { printf "%.1f", k / 1024 }')
budget_mb=$(awk -v b="$MAX_IN_FLIGHT" 'BEGIN { printf "%.1f", b / 1048576 }')
goal_mb=$(awk -v i="$idle_mb" -v b="$budget_mb" 'BEGIN { printf "%.1f", i + b + 16 }')

echo
printf '%-46s %s\n' "requests" "$total in ${elapsed}s: $ok answered 200, $busy answered 429, $other other"
printf '%-46s %s\n' "queue length (LLEN)" "$queued; 200s × $COUNT = $expected"
printf '%-46s %s\n' "producer RSS idle / peak (VmRSS / VmHWM)" "$idle_mb MB / $peak_mb MB"
printf '%-46s %s\n' "goal: peak ≤ idle + budget + 16 MB" "$goal_mb MB (budget $budget_mb MB); ratio $(ratio "$peak_mb" "$goal_mb")"
echo "load average now: $(load) on $(nproc) cores"

status=0
[ "$queued" = "$expected" ] || { echo "bench: the queue holds $queued items, the 200s promised $expected" >&2; status=1; }
[ "$other" = 0 ] || { echo "bench: $other answers were neither 200 nor 429" >&2; status=1; }
awk -v p="$peak_mb" -v g="$goal_mb" 'BEGIN { exit !(p <= g) }' ||
  { echo "bench: peak RSS $peak_mb MB is above the goal of $goal_mb MB" >&2; status=1; }
exit "$status"
