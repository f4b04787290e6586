#!/usr/bin/env bash
# `ebb operator` at scale on the loopback control plane: N QueueScalers (default 1,000), each on
# its own Redis list and its own target. The targets create no pods, so that the figures measure
# ebb and not the controller-manager: a tiny custom resource, widgets.bench.ebb.dev, with a
# scale subresource (.spec.replicas / .status.replicas).
#
# Measured, each with the load average beside it:
#   1. start: operator start ─▶ every QueueScaler has status.observedGeneration and a Ready
#      condition (goal < 30 s at 1,000);
#   2. idle: API writes per second while nothing changes, from the kube-apiserver's
#      apiserver_request_total{verb=~"POST|PUT|PATCH|DELETE"} before and after the window, by
#      resource (goal: none but the Lease; the controller-manager's own writes show up too);
#   3. load: a fixed rate of key changes (--rate per second at random keys, plus a burst of
#      --burst keys at once every 15 s) for --seconds; per change, the time from the change to
#      the target's watch showing the replicas it implies: p50/p95/p99 (goal p99 < 1 s polling
#      interval + 0.5 s);
#   4. the operator's RSS (VmRSS, and the peak VmHWM; goal < 64 MB).
# All of it twice, each on a fresh control plane and Redis: polling alone (a Redis that sends
# no keyspace notifications; goal p99 < 1.5 s), then woken by keyspace notifications (the
# operator run with --enable-keyspace-events; goal p99 < 1 s); then the ratios.
# Every change sets a list to 20 × r items (r in 0..5, never the key's current r) and leaves the
# key alone for 3 s, so that each change has exactly one scale request to wait for. The bench's
# QueueScalers have cooldownSeconds 0, no stabilization and policies that allow any step, so
# that a latency is the operator's reaction and not a policy it was told to follow.
#
#   bench/operator/scale.sh [--scalers 1000] [--seconds 60] [--rate 20] [--burst 100] [--modes "polling events"]
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/operator/common.sh

scalers=1000 seconds=60 rate=20 burst=100 idle_seconds=30 modes="polling events"
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: $1 needs a positive integer, got '$2'" >&2; exit 2; }; }
while (($#)); do
  case "$1" in
  --scalers | --seconds | --rate | --burst)
    positive "$1" "${2:-}"
    declare "${1#--}=$2"
    shift 2
    ;;
  --modes)
    [[ "${2:-}" =~ ^(polling|events)( (polling|events))*$ ]] || { echo "scale.sh: --modes takes polling and/or events, got '${2:-}'" >&2; exit 2; }
    modes=$2
    shift 2
    ;;
  *) echo "scale.sh: unknown argument $1 (usage: $0 [--scalers N] [--seconds S] [--rate R] [--burst B] [--modes \"polling events\"])" >&2 && exit 2 ;;
  esac
done
((burst <= scalers)) || { echo "scale.sh: --burst ($burst) cannot exceed --scalers ($scalers)" >&2; exit 2; }

build_ebb
scripts/control-plane.sh build >&2

# p<percent> of numbers, one per line (nearest rank).
percentile() {
  sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

# measure <mode>: one full run (control plane, Redis, objects, operator, phases 1–3) whose
# figures land in the arrays below under <mode>; polling or events.
declare -A result
measure() {
local mode="$1"
echo "######## mode: $mode"
start_control_plane "$mode"
start_redis
install_queuescaler_crd
apply <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.bench.ebb.dev}
spec:
  group: bench.ebb.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
        scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {replicas: {type: integer}}}
            status: {type: object, properties: {replicas: {type: integer}}}
YAML
"$kubectl" wait --for=condition=Established --timeout=60s crd/widgets.bench.ebb.dev >/dev/null

echo "== $scalers widgets and QueueScalers (load $(load))"
manifests="$bench_work/objects.yaml"
for ((i = 0; i < scalers; i++)); do
  cat <<YAML
---
apiVersion: bench.ebb.dev/v1
kind: Widget
metadata: {name: w-$i, namespace: default}
spec: {replicas: 0}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {name: qs-$i, namespace: default}
spec:
  scaleTargetRef: {apiVersion: bench.ebb.dev/v1, kind: Widget, name: w-$i}
  source: {redisList: {redis: {address: "127.0.0.1:$redis_port"}, key: key-$i}}
  pollingIntervalSeconds: 1
  cooldownSeconds: 0
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies: [{type: Pods, value: 100, periodSeconds: 1}]
    scaleDown:
      stabilizationWindowSeconds: 0
      policies: [{type: Pods, value: 100, periodSeconds: 1}]
YAML
done >"$manifests"
apply <"$manifests"

# ── 1. start → all reconciled ──────────────────────────────────────────────────
# Lines "<observedGeneration> <Ready status>" per QueueScaler.
reconciled() {
  "$kubectl" get queuescalers.ebb.dev -n default -o \
    'jsonpath={range .items[*]}{.status.observedGeneration}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk '$1 != "" && $2 != "" { n++ } END { print n + 0 }'
}
echo "== 1. operator start → $scalers reconciled"
started=$EPOCHREALTIME
if [ "$mode" = events ]; then start_operator --enable-keyspace-events; else start_operator; fi
start_load=$(load)
done_count=0
next_progress=$((SECONDS + 10))
while ((done_count < scalers)); do
  if ! kill -0 "$operator_pid" 2>/dev/null; then
    echo "scale.sh: the operator exited; its log:" >&2
    tail -30 "$operator_log" >&2
    exit 1
  fi
  if awk -v s="$started" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n - s > 300) }'; then
    echo "scale.sh: only $done_count of $scalers reconciled after 300 s; operator log: $operator_log" >&2
    tail -30 "$operator_log" >&2
    exit 1
  fi
  done_count=$(reconciled)
  if ((SECONDS >= next_progress)); then
    echo "  … $done_count reconciled after $(awk -v a="$EPOCHREALTIME" -v b="$started" 'BEGIN { printf "%.0f", a - b }') s   (load $(load))"
    next_progress=$((SECONDS + 10))
  fi
  sleep 0.2
done
start_seconds=$(awk -v a="$EPOCHREALTIME" -v b="$started" 'BEGIN { printf "%.1f", a - b }')
start_load="$start_load → $(load)"
ready_true=$("$kubectl" get queuescalers.ebb.dev -n default -o \
  'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true)
rss_after_start=$(operator_rss_kb)
# What the memory goes to: connections to Redis and the API server, threads, open files.
redis_clients=$(redis-cli -p "$redis_port" INFO clients | awk -F: '/^connected_clients:/ { print $2 - 1 }')
operator_threads=$(awk '/^Threads:/ { print $2 }' "/proc/$operator_pid/status")
operator_fds=$(find "/proc/$operator_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
echo "  all $scalers reconciled in $start_seconds s ($ready_true Ready=True)   (load $start_load)"

# ── 2. idle: API writes while nothing changes ──────────────────────────────────
# "<verb> <group/resource[/subresource]> <count>" per write counter of the API server.
writes() {
  "$kubectl" get --raw /metrics | awk '
    /^apiserver_request_total\{/ && /verb="(POST|PUT|PATCH|DELETE|APPLY)"/ {
      match($0, /verb="[A-Z]+"/);        verb = substr($0, RSTART + 6, RLENGTH - 7)
      match($0, /resource="[^"]*"/);     resource = substr($0, RSTART + 10, RLENGTH - 11)
      group = ""; if (match($0, /group="[^"]*"/)) group = substr($0, RSTART + 7, RLENGTH - 8)
      sub_ = ""; if (match($0, /subresource="[^"]+"/)) sub_ = "/" substr($0, RSTART + 13, RLENGTH - 14)
      key = verb " " (group == "" ? "core" : group) "/" resource sub_
      total[key] += $NF
    }
    END { for (k in total) print k, total[k] }' | sort
}
# writes_between <before> <after> <seconds>: the writes per second by verb and resource.
writes_between() {
  awk -v s="$3" 'NR == FNR { before[$1 " " $2] = $3; next }
    { d = $3 - before[$1 " " $2]; if (d > 0) printf "    %-7s %-45s %6d  (%.2f/s)\n", $1, $2, d, d / s }' "$1" "$2"
}
echo "== 2. idle for $idle_seconds s: API writes"
sleep 5 # the last status writes of the start settle first
writes >"$bench_work/writes.0"
idle_load_before=$(load)
sleep "$idle_seconds"
writes >"$bench_work/writes.1"
idle_load="$idle_load_before → $(load)"
idle_report=$(writes_between "$bench_work/writes.0" "$bench_work/writes.1" "$idle_seconds")
idle_non_lease=$(awk -v s="$idle_seconds" 'NR == FNR { before[$1 " " $2] = $3; next }
  $2 !~ /\/leases$/ { d += $3 - before[$1 " " $2] } END { printf "%.2f", d / s }' \
  "$bench_work/writes.0" "$bench_work/writes.1")
echo "${idle_report:-    none}"
rss_after_idle=$(operator_rss_kb)

# ── 3. load: key change → scale request seen ───────────────────────────────────
echo "== 3. load for $seconds s: $rate key changes/s at random, plus $burst keys at once every 15 s"
watch_file="$bench_work/widgets.watch"
watch_replicas "$watch_file" widgets.bench.ebb.dev -n default --no-headers \
  -o 'custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas'
# The initial list comes first: wait for it, so that only events of the load follow.
until [ -f "$watch_file" ] && [ "$(wc -l <"$watch_file")" -ge "$scalers" ]; do sleep 0.1; done
changes="$bench_work/changes"
: >"$changes"
declare -a current_r last_change
for ((i = 0; i < scalers; i++)); do current_r[i]=0 last_change[i]=0; done
# change_commands <key index>: picks the key's next r, logs "<stamp> change w-<i> <r>" once
# the commands are sent, and prints the Redis commands that set the list to 20 × r items.
pick_key() { # sets key: a random key left alone for 3 s
  local tries
  for ((tries = 0; tries < 1000; tries++)); do
    key=$(((RANDOM * 32768 + RANDOM) % scalers))
    ((${EPOCHREALTIME/./} - last_change[key] >= 3000000)) && return
  done
  echo "scale.sh: no key left alone for 3 s: lower --rate or --burst" >&2
  exit 1
}
redis_commands() { # <key> <r>
  printf 'MULTI\nDEL key-%s\n' "$1"
  if (($2 > 0)); then
    printf 'RPUSH key-%s' "$1"
    printf ' x%.0s' $(seq $((20 * $2)))
    printf '\n'
  fi
  printf 'EXEC\n'
}
# change_keys <count> <steady|burst>: changes <count> keys in one redis-cli call, stamped just
# before it.
change_keys() {
  local n stamp commands="" picked=()
  for ((n = 0; n < $1; n++)); do
    pick_key
    local r=$(((current_r[key] + 1 + RANDOM % 5) % 6)) # 0..5, never the current one
    current_r[key]=$r
    last_change[key]=${EPOCHREALTIME/./} # microseconds
    commands+=$(redis_commands "$key" "$r")$'\n'
    picked+=("w-$key $r")
  done
  stamp=$EPOCHREALTIME
  printf '%s' "$commands" | redis-cli -p "$redis_port" >/dev/null
  for n in "${picked[@]}"; do echo "$stamp change $n $2" >>"$changes"; done
}
writes >"$bench_work/writes.2"
load_started=$EPOCHREALTIME
load_load_before=$(load)
interval=$(awk -v r="$rate" 'BEGIN { printf "%.6f", 1 / r }')
tick=0
next_burst=15
while :; do
  elapsed=$(awk -v a="$EPOCHREALTIME" -v b="$load_started" 'BEGIN { printf "%.3f", a - b }')
  awk -v e="$elapsed" -v s="$seconds" 'BEGIN { exit !(e >= s) }' && break
  if awk -v e="$elapsed" -v b="$next_burst" 'BEGIN { exit !(e >= b) }'; then
    change_keys "$burst" burst
    next_burst=$((next_burst + 15))
  fi
  change_keys 1 steady
  tick=$((tick + 1))
  # A fixed rate: sleep until the next tick's due time, whatever this one cost.
  pause=$(awk -v t="$tick" -v i="$interval" -v a="$EPOCHREALTIME" -v b="$load_started" \
    'BEGIN { p = b + t * i - a; printf "%.3f", (p > 0 ? p : 0) }')
  sleep "$pause"
done
load_wall=$(awk -v a="$EPOCHREALTIME" -v b="$load_started" 'BEGIN { printf "%.1f", a - b }')
sleep 5 # the last changes' scale requests arrive
writes >"$bench_work/writes.3"
load_load="$load_load_before → $(load)"
rss_after_load=$(operator_rss_kb)
peak_rss=$(operator_peak_rss_kb)
# shellcheck disable=SC2154 # set by watch_replicas (common.sh)
kill "$watch_pid" 2>/dev/null || true
sleep 0.2

# Per change, the first watch event of its widget at or after it with the replicas it implies.
latencies="$bench_work/latencies"
{
  cat "$changes"
  awk '$2 ~ /^w-/ { print $1, "seen", $2, $3 }' "$watch_file"
} | sort -s -g -k1,1 | awk -v out="$latencies" '
  $2 == "change" { since[$3] = $1; want[$3] = $4; kind[$3] = $5; changes++; next }
  $2 == "seen" && ($3 in since) && $4 == want[$3] { print $1 - since[$3], kind[$3] > out; delete since[$3]; seen++ }
  END { missed = 0; for (k in since) missed++; print changes, seen, missed }' >"$bench_work/counts"
read -r n_changes n_seen n_missed <"$bench_work/counts"
seconds_of() { # <percent> [steady|burst]
  awk -v k="${2:-}" 'k == "" || $2 == k { print $1 }' "$latencies" | percentile "$1" |
    awk '{ printf ($1 == "n/a" ? "%s" : "%.3f"), $1 }'
}
p50=$(seconds_of 50)
p95=$(seconds_of 95)
p99=$(seconds_of 99)
max=$(seconds_of 100)
load_report=$(writes_between "$bench_work/writes.2" "$bench_work/writes.3" "$load_wall")
errors=$(grep -ciE 'error|warn|throttl' "$operator_log" || true)


result[$mode.start]=$start_seconds result[$mode.start_load]=$start_load result[$mode.ready]=$ready_true
result[$mode.idle]=$idle_non_lease result[$mode.idle_load]=$idle_load result[$mode.idle_report]=${idle_report:-    none}
result[$mode.load_wall]=$load_wall result[$mode.changes]=$n_changes result[$mode.seen]=$n_seen result[$mode.missed]=$n_missed
result[$mode.p50]=$p50 result[$mode.p95]=$p95 result[$mode.p99]=$p99 result[$mode.max]=$max result[$mode.load_load]=$load_load
result[$mode.steady]="p50 $(seconds_of 50 steady) s  p95 $(seconds_of 95 steady) s  p99 $(seconds_of 99 steady) s"
result[$mode.burst]="p50 $(seconds_of 50 burst) s  p95 $(seconds_of 95 burst) s  p99 $(seconds_of 99 burst) s"
result[$mode.load_report]=${load_report:-    none}
result[$mode.rss_start]=$rss_after_start result[$mode.rss_idle]=$rss_after_idle result[$mode.rss_load]=$rss_after_load result[$mode.rss_peak]=$peak_rss
result[$mode.redis_clients]=$redis_clients result[$mode.threads]=$operator_threads result[$mode.fds]=$operator_fds
result[$mode.lease]=$(lease_renewals)
result[$mode.not_leading]=$(grep -c 'not leading' "$operator_log" || true)
result[$mode.errors]=$errors result[$mode.log]=$operator_log
result[$mode.first_errors]=$(grep -iE 'error|warn|throttl' "$operator_log" | head -5 | sed 's/^/    /' || true)
stop_operator
scripts/control-plane.sh down >/dev/null
unset EBB_CONTROL_PLANE_DIR
redis-cli -p "$redis_port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
}
for mode in $modes; do measure "$mode"; done

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v != "n/a" && v < g ? "met" : "MISSED") }'; }
for mode in $modes; do
  r() { echo "${result[$mode.$1]}"; }
  if [ "$mode" = events ]; then how="woken by keyspace notifications, polling every 1 s as the net" goal=1; else how="polling every 1 s" goal=1.5; fi
  echo
  echo "ebb operator at scale, $how: $scalers QueueScalers, $scalers widgets, $scalers Redis lists"
  echo "  start → all reconciled     $(r start) s, $(r ready) Ready=True   (goal < 30 s: $(verdict "$(r start)" 30))   (load $(r start_load))"
  echo "  idle API writes, $idle_seconds s     $(r idle)/s besides Leases (goal 0: $(verdict "$(r idle)" 0.001))   (load $(r idle_load))"
  r idle_report
  echo "  load, $(r load_wall) s: $(r changes) changes, $(r seen) scale requests seen, $(r missed) never seen"
  echo "    change → scale request   p50 $(r p50) s  p95 $(r p95) s  p99 $(r p99) s  max $(r max) s   (goal p99 < $goal s: $(verdict "$(r p99)" "$goal"))   (load $(r load_load))"
  echo "      the $rate/s changes alone   $(r steady)"
  echo "      the bursts of $burst alone   $(r burst)"
  echo "    API writes during the load:"
  r load_report
  echo "  operator RSS               after start $(mb "$(r rss_start)"), after idle $(mb "$(r rss_idle)"), after load $(mb "$(r rss_load)"), peak $(mb "$(r rss_peak)")   (goal < 64 MB: $(verdict "$(awk -v k="$(r rss_peak)" 'BEGIN { print k / 1024 }')" 64))"
  echo "  operator after start: $(r redis_clients) Redis client connections (the INFO query's own not counted), $(r threads) threads, $(r fds) open files"
  echo "  Lease: $(r lease); leadership lost (\"not leading\" in the log): $(r not_leading) times"
  echo "  operator log lines with error/warn/throttl: $(r errors)   (log kept in $(r log); the first ones below)"
  r first_errors
done
if [ "$modes" = "polling events" ]; then
  echo
  echo "ratios polling / keyspace notifications: p50 $(ratio "${result[polling.p50]}" "${result[events.p50]}")×  p95 $(ratio "${result[polling.p95]}" "${result[events.p95]}")×  p99 $(ratio "${result[polling.p99]}" "${result[events.p99]}")×  peak RSS $(ratio "${result[polling.rss_peak]}" "${result[events.rss_peak]}")×"
fi
