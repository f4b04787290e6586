#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, as plain processes (no Docker): etcd,
# kube-apiserver (RBAC, aggregation layer), kube-controller-manager (HPA every 5 s) and
# kube-scheduler; with --node, also one node (containerd, kubelet) that runs hostNetwork pods.
#
#   scripts/control-plane.sh build   build the pinned binaries from tools/* into the cache
#   scripts/control-plane.sh up [--node]
#                                    generate certificates, start everything, wait until ready
#                                    (--node, or EBB_NODE=1: and the node, scripts/lib/node.sh)
#   scripts/control-plane.sh load <image archive>
#                                    import a local OCI archive into the node's containerd
#   scripts/control-plane.sh host-state
#                                    print what a node changes on the host (`down` restores it)
#   scripts/control-plane.sh bin-dir print the folder of the built binaries
#   scripts/control-plane.sh env     print KUBECONFIG=… KUBE_BIN=… KUBE_PKI=… (eval it)
#   scripts/control-plane.sh down    stop everything by PID, undo what the node changed on the
#                                    host, and delete the state folder
#
#   binaries ─▶ ${EBB_CACHE_DIR:-~/.cache/ebb}/kube-v1.37.2/{bin,crds}   (survive fresh clones)
#   state    ─▶ ${EBB_CONTROL_PLANE_DIR:-<repo>/.cache/control-plane}
#                 pki/  *.kubeconfig  etcd/  logs/  pids/  env  node/ (containerd, kubelet)
#
# Settings (environment):
#   EBB_FEATURE_GATES        --feature-gates of the API server and the controller manager
#                            (default HPAScaleToZero=true)
#   EBB_SERVICE_CIDR         loopback service range (default 127.96.0.0/16)
#   EBB_KUBE_EXTRA_APISERVER_FLAGS, EBB_KUBE_EXTRA_CONTROLLER_MANAGER_FLAGS
#                            extra flags, space separated
#   EBB_CONTROL_PLANE_OWNER_PID   run `down` by itself once that process has exited
#   EBB_NODE                 1 or true: `up` adds the node, as --node does
#   EBB_NODE_LOCK_TIMEOUT    seconds `up --node` waits for another run's node (default 900)
#   EBB_ETCD_PORT, EBB_ETCD_PEER_PORT, EBB_KUBE_APISERVER_PORT, EBB_KUBE_CONTROLLER_MANAGER_PORT
#                            fixed ports instead of free ones (scripts/lib/ports.sh)
#   CI                       under CI (anything but empty, 0 or false) a prometheus-adapter that
#                            does not build fails `build` instead of leaving that hop out
#
# A failed or interrupted `up` stops what it started and keeps only logs/ (and an empty pids/,
# so that `down` still recognizes the folder): nothing keeps running, and the next `up` starts
# afresh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kube_version="v1.37.2"
helm_version="v3.22.0"
# The version tools/containerd/go.mod pins (stamped into the binary: `containerd --version`).
containerd_version="v2.4.2"
cache_dir="${EBB_CACHE_DIR:-$HOME/.cache/ebb}"
bin_dir="$cache_dir/kube-$kube_version/bin"
crds_dir="$cache_dir/kube-$kube_version/crds"
state_dir="${EBB_CONTROL_PLANE_DIR:-$repo/.cache/control-plane}"
pki="$state_dir/pki"
feature_gates="${EBB_FEATURE_GATES:-HPAScaleToZero=true}"

# shellcheck source=scripts/lib/go.sh
source "$repo/scripts/lib/go.sh"
# shellcheck source=scripts/lib/ports.sh
source "$repo/scripts/lib/ports.sh"
# shellcheck source=scripts/lib/node.sh
source "$repo/scripts/lib/node.sh"

die() {
  echo "control-plane: $*" >&2
  exit 1
}

# The rule of ebb_testkit::under_ci (crates/testkit/src/lib.rs): CI set to anything but empty,
# 0 or false. `.ci/run` sets CI=true.
under_ci() {
  case "${CI:-}" in
  "" | 0 | false) return 1 ;;
  *) return 0 ;;
  esac
}

# `value` as one shell word, single-quoted: `eval` gives back exactly `value` (spaces, $, ", \).
shell_quote() {
  local quote="'"
  printf "'%s'" "${1//$quote/$quote\\$quote$quote}"
}

# `value` as a single-quoted YAML scalar.
yaml_quote() {
  local quote="'"
  printf "'%s'" "${1//$quote/$quote$quote}"
}

# --- build ------------------------------------------------------------------------------

# What the binaries are built from: rebuilding is skipped while this is unchanged.
build_fingerprint() {
  { cat "$repo"/tools/*/go.mod "$repo"/tools/*/go.sum; declare -f build; } | sha256sum | cut -d' ' -f1
}

# go_build <tools dir> <ldflags> [go build flags…] <package…>: the packages' commands into
# $bin_dir, each named after its package's last path element (a later `-o` overrides that).
go_build() {
  local dir="$1" ldflags="$2"
  shift 2
  echo "control-plane: building from tools/$dir: ${*##*/}"
  (cd "$repo/tools/$dir" && go build -o "$bin_dir/" -ldflags "$ldflags" "$@")
}

build() {
  local go
  go=$(ebb_go)
  if [ -z "$go" ]; then
    echo "control-plane: go >= 1.26 is not installed: scripts/install-deps.sh installs it" >&2
    exit 3 # tests skip on this status only
  fi
  PATH="$(dirname "$go"):$PATH"
  local stamp="$bin_dir/.fingerprint" fingerprint
  fingerprint="$(build_fingerprint)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
    echo "control-plane: binaries up to date in $bin_dir"
    return
  fi
  mkdir -p "$bin_dir"
  export GOFLAGS=-mod=readonly
  # The version stamps Kubernetes' own build sets (hack/lib/version.sh): /version, user agents.
  local ldflags="" package
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $package.gitVersion=$kube_version -X $package.gitMajor=1 -X $package.gitMinor=37 -X $package.gitTreeState=clean"
  done
  # One line per tools/ module: go_build <tools dir> <ldflags> <package…> (into $bin_dir).
  go_build kube "$ldflags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet
  go_build etcd "" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3
  go_build helm "-X helm.sh/helm/v3/internal/version.version=$helm_version" helm.sh/helm/v3/cmd/helm
  # Static, without the snapshotters that need C libraries (the node uses overlayfs).
  CGO_ENABLED=0 go_build containerd "-X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
    -tags=no_btrfs,no_devmapper github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr
  echo "control-plane: building prometheus-adapter"
  # Optional: without it the e2e tests run the rest of the chain and say which hop is missing.
  if ! (cd "$repo/tools/prometheus-adapter" && go build -o "$bin_dir/prometheus-adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter); then
    rm -f "$bin_dir/prometheus-adapter"
    echo "control-plane: WARNING: prometheus-adapter did not build; the dojo e2e test will leave out the adapter hop" >&2
  fi
  (cd "$repo/tools/metrics-check" && go build -o "$bin_dir/metrics-check" .) # the metrics-api e2e tests' oracle
  echo "control-plane: fetching the prometheus-operator CRDs"
  local operator_dir
  operator_dir="$(cd "$repo/tools/prometheus-operator" && go mod download -json github.com/prometheus-operator/prometheus-operator | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$operator_dir/example/prometheus-operator-crd" ] || die "prometheus-operator module has no example/prometheus-operator-crd"
  mkdir -p "$crds_dir"
  cp "$operator_dir"/example/prometheus-operator-crd/*.yaml "$crds_dir/"
  chmod -R u+w "$crds_dir"
  echo "$fingerprint" >"$stamp"
  echo "control-plane: built into $bin_dir"
}

# The adapter → HPA hop is what the dojo e2e tests check: under CI it must be there.
require_adapter_under_ci() {
  [ ! -x "$bin_dir/prometheus-adapter" ] || return 0
  if under_ci; then
    die "prometheus-adapter is missing from $bin_dir (its build failed, above or in an earlier run; rm $bin_dir/.fingerprint to retry): under CI that is a failure, the adapter → HPA hop is what the dojo e2e tests check"
  fi
  echo "control-plane: WARNING: no prometheus-adapter in $bin_dir: the dojo e2e tests will leave out the adapter → HPA hop" >&2
}

# --- certificates --------------------------------------------------------------------

# new_key <name>: an ECDSA P-256 private key (fast to generate, accepted everywhere).
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key" 2>/dev/null
}

# new_ca <name> <common name>
new_ca() {
  new_key "$1"
  openssl req -x509 -new -key "$pki/$1.key" -out "$pki/$1.crt" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

# new_cert <name> <ca> <subject> <serverAuth|clientAuth> [subjectAltName]
new_cert() {
  local name="$1" ca="$2" subject="$3" usage="$4" san="${5:-}" extensions
  new_key "$name"
  extensions="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [ -z "$san" ] || extensions+=$'\n'"subjectAltName=$san"
  openssl req -new -key "$pki/$name.key" -subj "$subject" 2>/dev/null |
    openssl x509 -req -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial -days 365 \
      -extfile <(echo "$extensions") -out "$pki/$name.crt" 2>/dev/null
}

# The first address of the service range: the ClusterIP of the `kubernetes` Service.
first_service_ip() {
  local network="${1%/*}"
  echo "${network%.*}.$((${network##*.} + 1))"
}

generate_pki() {
  mkdir -p "$pki"
  new_ca ca "ebb-kubernetes-ca"
  new_cert apiserver ca "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:$(first_service_ip "$service_cidr"),DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  new_cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
  new_cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
  new_cert scheduler ca "/CN=system:kube-scheduler" clientAuth
  # `kubectl logs`/`exec`: the API server's identity towards a kubelet.
  new_cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  new_ca front-proxy-ca "ebb-front-proxy-ca"
  new_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
  new_key service-account
  openssl pkey -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub" 2>/dev/null
}

# write_kubeconfig <file> <client certificate name>
write_kubeconfig() {
  cat >"$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: ebb
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority: $(yaml_quote "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate: $(yaml_quote "$pki/$2.crt")
    client-key: $(yaml_quote "$pki/$2.key")
contexts:
- name: ebb
  context: {cluster: ebb, user: $2, namespace: default}
current-context: ebb
KUBECONFIG
}

# --- processes ---------------------------------------------------------------------------

# start <name> <command…>: runs it detached, its output in logs/<name>.log, its PID in pids/.
start() {
  local name="$1"
  shift
  # Without fd 9, the node lock (scripts/lib/node.sh): only the watcher holds it.
  "$@" </dev/null >"$state_dir/logs/$name.log" 2>&1 9<&- &
  echo $! >"$state_dir/pids/$name"
}

# wait_until <what> <log name> <command…>: retries the command for up to 60 s (the command
# bounds its own time: a port held by a process that never answers must not hang `up`).
wait_until() {
  local what="$1" log="$2" deadline=$((SECONDS + 60))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! alive "$(cat "$state_dir/pids/$log")"; then
      tail -n 20 "$state_dir/logs/$log.log" >&2
      die "$log exited before $what (log above, from $state_dir/logs/$log.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$state_dir/logs/$log.log" >&2
      die "$what: not ready after 60 s (log above)"
    fi
    sleep 0.2
  done
}

# Our processes only: a PID file whose process still has this state folder in its arguments.
our_pid() {
  local pid
  pid="$(cat "$1")"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$state_dir" && echo "$pid"
}

# Running, as opposed to gone or a zombie waiting for its parent.
alive() {
  [ -r "/proc/$1/stat" ] && ! grep -q ') Z' "/proc/$1/stat"
}

stop_all() {
  local name pid deadline
  # The node first, while the API server still answers: only if this run owns it.
  if [ "$(cat "$node_record/state" 2>/dev/null)" = "$state_dir" ]; then node_down; fi
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [ -f "$state_dir/pids/$name" ] || continue
    if pid="$(our_pid "$state_dir/pids/$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 15))
      while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$state_dir/pids/$name"
  done
}

# Everything `up` runs, checked before it starts anything: one line per missing tool, with
# how to get it.
check_tools() {
  local missing=() tool binary
  for tool in openssl:openssl curl:curl ss:iproute2; do
    command -v "${tool%%:*}" >/dev/null ||
      missing+=("${tool%%:*} is not installed: apt-get install ${tool#*:} (or scripts/install-deps.sh)")
  done
  for binary in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$bin_dir/$binary" ] || missing+=("$bin_dir/$binary is missing: run '$0 build' first")
  done
  ((${#missing[@]} == 0)) && return
  printf 'control-plane: %s\n' "${missing[@]}" >&2
  exit 1
}

# The EXIT trap of `up`: unless `up` finished, stop what it started and delete what it wrote,
# keeping logs/ to read and an empty pids/ for `down` to recognize the folder.
undo_failed_up() {
  local status=$?
  [ "$up_finished" = 1 ] && return
  trap "" INT TERM # a second Ctrl-C must not cut the cleanup short
  stop_all
  # A child started just before the signal, its PID not yet written.
  local pid
  for pid in $(jobs -p); do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$pki" "$state_dir/etcd" "$state_dir"/*kubeconfig "$state_dir/env"
  local outcome=failed
  if ((status == 130 || status == 143)); then outcome=interrupted; fi
  echo "control-plane: up $outcome: stopped what it had started; logs kept in $state_dir/logs ('$0 down' deletes them)" >&2
  exit $((status == 0 ? 1 : status))
}

# set_port <variable> <setting>: the port in the environment variable <setting> when set, else
# a free port.
set_port() {
  local fixed="${!2:-}"
  if [ -n "$fixed" ]; then
    if ! [[ "$fixed" =~ ^[0-9]{1,5}$ ]] || ((10#$fixed < 1 || 10#$fixed > 65535)); then
      die "$2=$fixed: must be a port number from 1 to 65535"
    fi
    printf -v "$1" %s "$((10#$fixed))"
  else
    ebb_free_port "$1"
  fi
}

up() {
  local with_node=0
  case "${EBB_NODE:-}" in 1 | true) with_node=1 ;; "" | 0 | false) ;; *) die "EBB_NODE=$EBB_NODE: must be 1, true, 0 or false" ;; esac
  while (($#)); do
    case "$1" in
    --node) with_node=1 ;;
    *) die "up: unknown argument '$1' (usage: up [--node])" ;;
    esac
    shift
  done
  check_tools
  if ((with_node)); then node_check; fi
  [ ! -f "$state_dir/pids/kube-apiserver" ] || die "already up in $state_dir (run '$0 down' first)"
  up_finished=0
  trap undo_failed_up EXIT
  # The EXIT trap runs on the way out: after an error (set -e), `die`, or these signals.
  trap 'exit 130' INT
  trap 'exit 143' TERM
  service_cidr="${EBB_SERVICE_CIDR:-127.96.0.0/16}"
  mkdir -p "$state_dir/logs" "$state_dir/pids"
  local etcd_port="" etcd_peer_port="" kcm_port="" scheduler_port=""
  apiserver_port="" # global: write_kubeconfig reads it
  set_port etcd_port EBB_ETCD_PORT
  set_port etcd_peer_port EBB_ETCD_PEER_PORT
  set_port apiserver_port EBB_KUBE_APISERVER_PORT
  set_port kcm_port EBB_KUBE_CONTROLLER_MANAGER_PORT
  ebb_free_port scheduler_port
  generate_pki
  write_kubeconfig "$state_dir/kubeconfig" admin
  write_kubeconfig "$state_dir/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$state_dir/scheduler.kubeconfig" scheduler

  # No fsync: the data is thrown away with the folder, and fsync is slow on shared disks.
  start etcd "$bin_dir/etcd" --name default --data-dir "$state_dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer_port" --listen-metrics-urls ""
  wait_until "etcd health" etcd curl -fsS --max-time 5 "http://127.0.0.1:$etcd_port/health"

  # Loopback only: the `kubernetes` Service cannot have loopback endpoints (reconciler none),
  # and with a loopback service range and aggregator routing off, an APIService's Service
  # ClusterIP is an address a local process can bind.
  # shellcheck disable=SC2086 # extra flags are a space-separated list on purpose
  start kube-apiserver "$bin_dir/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
    --endpoint-reconciler-type none --service-cluster-ip-range "$service_cidr" --enable-aggregator-routing=false \
    --authorization-mode Node,RBAC --client-ca-file "$pki/ca.crt" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/service-account.pub" --service-account-signing-key-file "$pki/service-account.key" \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types Hostname \
    --feature-gates "$feature_gates" ${EBB_KUBE_EXTRA_APISERVER_FLAGS:-}
  wait_until "kube-apiserver /readyz" kube-apiserver curl -fsS --max-time 5 --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$apiserver_port/readyz"

  # shellcheck disable=SC2086 # extra flags are a space-separated list on purpose
  start kube-controller-manager "$bin_dir/kube-controller-manager" \
    --kubeconfig "$state_dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state_dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state_dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --use-service-account-credentials --service-account-private-key-file "$pki/service-account.key" \
    --root-ca-file "$pki/ca.crt" --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --horizontal-pod-autoscaler-sync-period 5s --horizontal-pod-autoscaler-downscale-stabilization 20s \
    --feature-gates "$feature_gates" ${EBB_KUBE_EXTRA_CONTROLLER_MANAGER_FLAGS:-}
  wait_until "kube-controller-manager /healthz" kube-controller-manager curl -fsSk --max-time 5 "https://127.0.0.1:$kcm_port/healthz"
  # Pods are refused until the controller manager has made the namespace's service account.
  wait_until "the default service account" kube-controller-manager "$bin_dir/kubectl" --kubeconfig "$state_dir/kubeconfig" \
    --request-timeout 5s get serviceaccount default

  # Pods get bound to a node (there is none without --node: they stay Pending, unschedulable).
  start kube-scheduler "$bin_dir/kube-scheduler" \
    --kubeconfig "$state_dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state_dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$state_dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$scheduler_port" --leader-elect=false
  wait_until "kube-scheduler /healthz" kube-scheduler curl -fsSk --max-time 5 "https://127.0.0.1:$scheduler_port/healthz"

  if ((with_node)); then node_up; fi

  # Quoted: `eval "$(… env)"` gives back paths with spaces as they are.
  {
    printf 'export KUBECONFIG=%s\n' "$(shell_quote "$state_dir/kubeconfig")"
    printf 'export KUBE_BIN=%s\n' "$(shell_quote "$bin_dir")"
    printf 'export KUBE_PKI=%s\n' "$(shell_quote "$pki")"
    printf 'export KUBE_APISERVER=%s\n' "$(shell_quote "https://127.0.0.1:$apiserver_port")"
    printf 'export KUBE_SERVICE_CIDR=%s\n' "$(shell_quote "$service_cidr")"
    printf 'export KUBE_CRDS=%s\n' "$(shell_quote "$crds_dir")"
    if ((with_node)); then
      printf 'export KUBE_NODE=%s\n' "$(shell_quote "$node_name")"
      printf 'export KUBE_CONTAINERD_SOCKET=%s\n' "$(shell_quote "$node_dir/containerd.sock")"
    fi
  } >"$state_dir/env"
  up_finished=1
  trap - EXIT INT TERM

  # A test that dies without cleaning up must not leave a cluster behind. With a node, this
  # watcher also holds the machine's node lock (fd 9) until `down` deletes the state folder.
  if [ -n "${EBB_CONTROL_PLANE_OWNER_PID:-}" ] || ((with_node)); then
    (
      owner="${EBB_CONTROL_PLANE_OWNER_PID:-}"
      while [ -d "$state_dir" ] && { [ -z "$owner" ] || alive "$owner"; }; do sleep 1; done
      [ ! -d "$state_dir" ] || "$repo/scripts/control-plane.sh" down
    ) </dev/null >/dev/null 2>&1 &
  fi
  exec 9<&-
  echo "control-plane: up (state in $state_dir, logs in $state_dir/logs)" >&2
  echo "  eval \"\$($0 env)\" && \"\$KUBE_BIN/kubectl\" get --raw /readyz" >&2
  echo "  $0 down    # stops everything and deletes $state_dir" >&2
}

env_of() {
  [ -f "$state_dir/env" ] || die "not up (no $state_dir/env): run '$0 up' first"
  cat "$state_dir/env"
}

down() {
  [ -d "$state_dir" ] || return 0
  [ -d "$state_dir/pids" ] || die "$state_dir does not look like a control-plane folder (no pids/): not deleting it"
  stop_all
  rm -rf "$state_dir"
}

main() {
  case "${1:-}" in
  build)
    build
    require_adapter_under_ci
    ;;
  bin-dir) echo "$bin_dir" ;;
  host-state) node_host_state ;;
  up) shift && up "$@" ;;
  load)
    [ -f "${2:-}" ] || die "load: '${2:-}' is not an image archive (usage: load <file.oci.tar>)"
    [ -S "$state_dir/node/containerd.sock" ] || die "load: no node in $state_dir (run '$0 up --node' first)"
    node_dir="$state_dir/node"
    node_load "$2"
    ;;
  env) env_of ;;
  down) down ;;
  *) die "usage: $0 build|bin-dir|up [--node]|load <archive>|down|env" ;;
  esac
}

main "$@"
