# Shared by the bench scripts: source it, don't run it.
# shellcheck shell=bash

# Background processes to stop on exit, and the scratch folder to remove.
bench_pids=()
bench_work=$(mktemp -d)
bench_cleanup() {
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bench_work"
}
trap bench_cleanup EXIT

# Where cargo builds: CARGO_TARGET_DIR if set (relative to the repository's root, where the
# benches run cargo), as cargo reads it.
cargo_target=${CARGO_TARGET_DIR:-target}

# Installs what the benches need and builds ebb in release; sets ebb to its path.
build_ebb() {
  scripts/install-deps.sh
  echo "== building ebb (release)"
  cargo build --release --locked -p ebb --quiet
  # shellcheck disable=SC2034 # read by the scripts that source this file
  ebb=$cargo_target/release/ebb
}

# shellcheck source=scripts/lib/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/ports.sh"

wait_http() { # url
  for _ in $(seq 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return
    sleep 0.05
  done
  echo "bench: $1 never answered" >&2
  exit 1
}

# Starts a throwaway redis-server; sets redis_port.
start_redis() {
  redis_port=""
  ebb_free_port redis_port
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$bench_work" \
    --daemonize no >"$bench_work/redis-$redis_port.log" 2>&1 &
  bench_pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$redis_port" PING >/dev/null 2>&1 && return; sleep 0.05; done
  echo "bench: redis-server did not start" >&2
  exit 1
}

# The load average, as printed beside every figure.
load() { cut -d' ' -f1-3 /proc/loadavg; }

# What a results file records of a run: when, which commit, the command, the machine's load.
bench_header() {
  echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)'), $(nproc) cores, load average $(load): $0 $*"
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# a / b with 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# Median of numbers, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
