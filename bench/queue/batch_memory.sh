#!/usr/bin/env bash
# Peak memory of the producer for one oversized batch (POST /publish/200 with a 1.5 MB body),
# with the default --max-batch-bytes (refused before any item is built) and with the limit
# raised out of the way (the batch is built and pushed: what the producer did before the limit).
#
#   bench/queue/batch_memory.sh
#   COUNT=100 BODY_BYTES=1000000 bench/queue/batch_memory.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

COUNT=${COUNT:-200}
BODY_BYTES=${BODY_BYTES:-1500000}

# shellcheck source=bench/lib.sh
source bench/lib.sh
build_ebb
start_redis
head -c "$BODY_BYTES" /dev/zero | tr '\0' x >"$bench_work/body"

peak_rss_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

publish_once() { # --max-batch-bytes and --max-in-flight-bytes values; prints "<HTTP status> <peak RSS MB>"
  local port pid status
  ebb_free_port port
  EBB_LOG=warn "$ebb" producer --http "127.0.0.1:$port" --redis-server "127.0.0.1:$redis_port" \
    --max-batch-bytes "$1" --max-in-flight-bytes "$2" >"$bench_work/producer-$1.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  wait_http "http://127.0.0.1:$port/healthz"
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary @"$bench_work/body" \
    "http://127.0.0.1:$port/publish/$COUNT")
  echo "$status $(peak_rss_mb "$pid")"
  kill "$pid"
  redis-cli -p "$redis_port" DEL padok >/dev/null
}

echo "== POST /publish/$COUNT with a $BODY_BYTES-byte body"
limited=$(publish_once 16MiB 96MiB)
unlimited=$(publish_once 1023GiB 1023GiB)
read -r limited_status limited_mb <<<"$limited"
read -r unlimited_status unlimited_mb <<<"$unlimited"
[ "$limited_status" = 413 ] || { echo "bench: expected 413 with the default limit, got $limited_status" >&2; exit 1; }
[ "$unlimited_status" = 200 ] || { echo "bench: expected 200 without the limit, got $unlimited_status" >&2; exit 1; }

echo
printf '%-44s %8s %8s\n' "measurement" "status" "peak MB"
printf '%-44s %8s %8s\n' "--max-batch-bytes 16MiB (default)" "$limited_status" "$limited_mb"
printf '%-44s %8s %8s\n' "both limits 1023GiB (no limit)" "$unlimited_status" "$unlimited_mb"
echo "ratio limited / unlimited: $(ratio "$limited_mb" "$unlimited_mb") (goal: < 0.1, and the limited producer < 64 MB)"
