# Shared by bench/operator/*.sh: source it, don't run it. A loopback control plane, a Redis,
# the QueueScaler CRD and a release `ebb operator run`, plus the watch the benches time with.
# shellcheck shell=bash

# Sourced from the repository's root, as bench/lib.sh is.
# shellcheck source=bench/lib.sh
source bench/lib.sh

# The processes first (a leader stopping on SIGTERM releases its Lease, which needs the API
# server), then the control plane (by PID), then the scratch folder; EBB_CONTROL_PLANE_OWNER_PID
# stops the control plane too if this shell dies without running its trap.
operator_bench_cleanup() {
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${EBB_CONTROL_PLANE_DIR:-}" ]; then
    scripts/control-plane.sh down >/dev/null 2>&1 || true
  fi
  bench_cleanup
}
trap operator_bench_cleanup EXIT

# Starts the control plane with HPAScaleToZero off (the operator must not need it); sets
# KUBECONFIG and kubectl. [name]: a fresh one of its own, for a bench that runs several.
start_control_plane() {
  export EBB_CONTROL_PLANE_DIR="$bench_work/control-plane${1:+-$1}"
  echo "== control plane (HPAScaleToZero=false)" >&2
  EBB_CONTROL_PLANE_OWNER_PID=$$ EBB_FEATURE_GATES=HPAScaleToZero=false \
    scripts/control-plane.sh up >&2
  local env
  env=$(scripts/control-plane.sh env)
  eval "$env" # export KUBECONFIG=… KUBE_BIN=…, quoted by the script
  kubectl="${KUBE_BIN:-}/kubectl"
  [ -n "${KUBE_BIN:-}" ] || { echo "bench: control-plane.sh env printed no KUBE_BIN" >&2; exit 1; }
}

# Applies manifests from stdin, server-side (large CRDs and thousands of objects fit).
apply() { "$kubectl" apply --server-side --field-manager=ebb-bench -f - >/dev/null; }

install_queuescaler_crd() {
  apply <helm/charts/operator/crds/queuescalers.yaml
  "$kubectl" wait --for=condition=Established --timeout=60s crd/queuescalers.ebb.dev >/dev/null
}

# Starts `ebb operator run [extra args…]` (the release build in $ebb); sets operator_pid,
# operator_log and operator_http.
start_operator() {
  local http_port
  ebb_free_port http_port
  # Kept after the run: at scale its log is a finding of its own.
  operator_log=$(mktemp "${TMPDIR:-/tmp}/ebb-bench-operator.XXXXXX.log")
  POD_NAME=bench-operator POD_NAMESPACE=default \
    "$ebb" operator run --http "127.0.0.1:$http_port" "$@" >"$operator_log" 2>&1 &
  operator_pid=$!
  bench_pids+=("$operator_pid")
  operator_http="http://127.0.0.1:$http_port"
  wait_http "$operator_http/healthz"
}

# Stops the operator (SIGTERM: it releases its Lease) and waits for it.
stop_operator() {
  kill "$operator_pid" 2>/dev/null || true
  wait "$operator_pid" 2>/dev/null || true
}

# The Lease renewals the operator saw, from its /metrics: how many, and the bucket holding the
# slowest (the time between two renewals; due every 4 s, writes stop after 9 s).
lease_renewals() {
  curl -fsS "$operator_http/metrics" | awk '
    /^ebb_operator_lease_renewal_interval_seconds_count/ { count = $NF }
    /^ebb_operator_lease_renewal_interval_seconds_bucket/ {
      match($0, /le="[^"]*"/); n++; le[n] = substr($0, RSTART + 4, RLENGTH - 5); value[n] = $NF
    }
    END {
      slowest = "?"
      for (i = 1; i <= n; i++) if (value[i] >= count) { slowest = le[i]; break }
      printf "%d renewals, the slowest within %s s", count, slowest
    }'
}
# The operator's resident memory in kB (VmRSS), and its peak (VmHWM).
operator_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$operator_pid/status"; }
operator_peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$operator_pid/status"; }

# watch_replicas <file> <kubectl get args…>: writes one line per watch event to <file>,
# "<epoch seconds> <kubectl's line>", stamped as the line arrives; sets watch_pid.
watch_replicas() {
  local file="$1"
  shift
  # Stamped by a reader on the pipe as each line arrives, not after the fact; the reader ends
  # when kubectl (the PID kept) closes its output.
  "$kubectl" get "$@" --watch 2>"$file.err" > >(stamp_lines >"$file") &
  watch_pid=$!
  bench_pids+=("$watch_pid")
}

stamp_lines() {
  local line
  while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}
