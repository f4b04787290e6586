# The optional node of scripts/control-plane.sh (`up --node`): containerd, kubelet and a
# loopback-only CNI config, so that hostNetwork pods really run. Sourced by control-plane.sh,
# which defines state_dir, bin_dir, pki, repo, die, start, alive, wait_until, new_cert,
# write_kubeconfig, ebb_free_port. Facts behind every setting: /work/shared/real-node.md.
#
# One node per machine (the /kubepods cgroups, /var/lib/kubelet/device-plugins and the shims'
# /run/containerd are fixed paths): `up --node` waits for a flock on /run/lock, held by the
# watcher process until `down`. What the node changes outside its state folder is written to
# /run/ebb-node first, so that the next `up --node` (or `down`) undoes what a killed run left:
#
#   /run/ebb-node/state      the state folder of the run that owns the node
#   /run/ebb-node/sysctl     kernel settings as they were before kubelet changed them
#   /run/ebb-node/created    paths outside the state folder that did not exist before
#   /run/ebb-node/chains     iptables chains (table chain) that existed before
# shellcheck shell=bash
# shellcheck disable=SC2154 # state_dir, bin_dir, pki, repo, … come from control-plane.sh

node_record=/run/ebb-node
# Kernel settings kubelet sets at every start (pkg/kubelet/cm: setupKernelTunables).
node_sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
# Fixed paths kubelet, containerd or its shims create outside their configured folders.
node_fixed_paths=(/var/lib/kubelet /run/containerd /var/log/containers /var/log/pods /etc/cni /opt/cni /run/netns /var/run/nri /opt/containerd)
# The node's name: it resolves to loopback everywhere, where the API server finds the kubelet
# (--kubelet-preferred-address-types=Hostname) for `kubectl logs` and `exec`.
node_name=localhost
# The kubelet's eviction floor for its disk (MiB); `up --node` refuses to start below twice
# that, naming the folder, instead of a node that evicts the pods it starts.
node_min_free_mib=256
# The exit status of `up --node` when this machine cannot run a node (tests skip on it, or fail
# under CI).
exit_no_node=4

# The one line saying why this machine cannot run a node, or nothing.
node_unsupported_reason() {
  local binary
  [ "$(id -u)" = 0 ] || { echo "not root (kubelet and containerd need root)"; return; }
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || { echo "no overlayfs in this kernel"; return; }
  command -v runc >/dev/null || { echo "no runc: apt-get install runc (or scripts/install-deps.sh)"; return; }
  [ -x /usr/lib/cni/loopback ] || { echo "no CNI loopback plugin in /usr/lib/cni: apt-get install containernetworking-plugins"; return; }
  command -v iptables >/dev/null || { echo "no iptables: apt-get install iptables"; return; }
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "no memory cgroup"; return; }
  for binary in kubelet containerd containerd-shim-runc-v2 ctr; do
    [ -x "$bin_dir/$binary" ] || { echo "$bin_dir/$binary is missing: run '$0 build' first"; return; }
  done
}

# The cgroup folders of the node's pods, one per mounted hierarchy (v1 and unified).
node_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -d "$hierarchy/kubepods" ] && echo "$hierarchy/kubepods"
  done
  return 0
}

# What a node may change on the host, as text (`host-state`): `down` must give it back
# unchanged. Processes by name, mounts, /kubepods cgroups, iptables rules, the fixed paths and
# the kernel settings.
node_host_state() {
  local setting path
  echo "# processes"
  # Names only (pgrep refuses patterns longer than a process name).
  # shellcheck disable=SC2009
  { ps -eo comm= | grep -E '^(containerd|kubelet|runc|pause)' || true; } | sort
  echo "# mounts"
  awk '{print $5}' /proc/self/mountinfo | sort
  echo "# cgroups"
  node_cgroups
  echo "# iptables"
  for tool in iptables-save ip6tables-save; do
    command -v "$tool" >/dev/null || continue
    "$tool" 2>/dev/null | grep -vE '^(#|:|\*|COMMIT)' | sed 's/\[[0-9:]*\]//' || true
  done
  echo "# paths"
  for path in "${node_fixed_paths[@]}"; do
    if [ -e "$path" ]; then echo "$path"; fi
  done
  echo "# kernel settings"
  for setting in "${node_sysctls[@]}"; do
    if [ -r "/proc/sys/$setting" ]; then echo "$setting $(cat "/proc/sys/$setting")"; fi
  done
}

# Takes the machine-wide node lock on fd 9, waiting up to EBB_NODE_LOCK_TIMEOUT seconds
# (default 900: another test binary's node is released when its tests end).
node_lock() {
  local lock_dir=/run/lock
  [ -d "$lock_dir" ] || lock_dir=/run
  # A directory everybody has, locked as it is: no lock file is left behind.
  exec 9<"$lock_dir"
  if ! flock -n 9; then
    echo "control-plane: waiting for the node of another run ($(cat "$node_record/state" 2>/dev/null || echo unknown)) to be released" >&2
    flock -w "${EBB_NODE_LOCK_TIMEOUT:-900}" 9 || die "the machine's node is still held by $(cat "$node_record/state" 2>/dev/null || echo another run) after ${EBB_NODE_LOCK_TIMEOUT:-900} s"
  fi
}

# iptables chains as "<tool> <table> <chain>" lines.
node_chains() {
  local tool table
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    for table in filter nat mangle; do
      "$tool" -w -t "$table" -S 2>/dev/null | sed -n "s/^-N \(.*\)/$tool $table \1/p"
    done
  done
}

# Records the host as it is before the node changes it.
node_record_host() {
  local setting path
  mkdir -p "$node_record"
  : >"$node_record/sysctl"
  for setting in "${node_sysctls[@]}"; do
    [ -r "/proc/sys/$setting" ] && echo "$setting $(cat "/proc/sys/$setting")" >>"$node_record/sysctl"
  done
  : >"$node_record/created"
  for path in "${node_fixed_paths[@]}"; do
    [ -e "$path" ] || echo "$path" >>"$node_record/created"
  done
  node_chains >"$node_record/chains"
  echo "$state_dir" >"$node_record/state"
}

# Kills every process of the node's pods (containers and pause), whatever runs or not.
node_kill_pods() {
  local deadline=$((SECONDS + 10)) cgroup pids
  while :; do
    pids=""
    for cgroup in $(node_cgroups); do
      # Cgroups vanish while this runs: find's complaints are expected.
      pids+=" $(find "$cgroup" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ' || true)"
    done
    [ -n "${pids// /}" ] || return 0
    # shellcheck disable=SC2086 # a list of PIDs
    kill -KILL $pids 2>/dev/null || true
    ((SECONDS < deadline)) || { echo "control-plane: pod processes still alive: $pids" >&2; return 0; }
    sleep 0.1
  done
}

# stop_pid <pid file>: TERM, then KILL after 10 s.
node_stop_pid() {
  local pid deadline
  [ -f "$1" ] || return 0
  pid="$(cat "$1")"
  if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$node_dir"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# Undoes everything the node did, from /run/ebb-node: the node of this run (`down`) or the one
# a killed run left (`up --node`). Safe to run twice.
node_down() {
  [ -f "$node_record/state" ] || return 0
  local owner node_dir pid setting value path line tool table chain
  owner="$(cat "$node_record/state")"
  [[ "$owner" == /?* ]] || die "$node_record/state does not name a state folder ('$owner'): not cleaning up"
  node_dir="$owner/node"
  node_stop_pid "$owner/pids/kubelet"
  node_kill_pods
  # The shims of this node's containerd (their containers are gone): by their -address flag.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $node_dir/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  node_stop_pid "$owner/pids/containerd"
  # Mounts under the node's folder and the shims' /run/containerd, deepest first.
  { awk '{print $5}' /proc/self/mountinfo | grep -E "^($node_dir|/run/containerd)/" || true; } | sort -r |
    while read -r path; do umount -l "$path" 2>/dev/null || true; done
  for path in $(node_cgroups); do
    find "$path" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # iptables: the chains that were not there before, and the rules that jump to them.
  while read -r tool table chain; do
    grep -qxF "$tool $table $chain" "$node_record/chains" 2>/dev/null && continue
    { "$tool" -w -t "$table" -S 2>/dev/null | grep -E -- "-j $chain( |$)" || true; } | sed 's/^-A /-D /' |
      while read -r line; do
        # shellcheck disable=SC2086 # a rule as iptables -S prints it, one word per argument
        "$tool" -w -t "$table" $line 2>/dev/null || true
      done
    "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true
    "$tool" -w -t "$table" -X "$chain" 2>/dev/null || true
  done < <(node_chains)
  while read -r setting value; do
    [ "$(cat "/proc/sys/$setting")" = "$value" ] || echo "$value" >"/proc/sys/$setting"
  done <"$node_record/sysctl"
  while read -r path; do
    rm -rf "$path"
  done <"$node_record/created"
  rm -rf "$node_dir"
  rm -rf "$node_record"
}

# The node's certificates: kubelet's client (a node identity, so the Node authorizer applies)
# and serving certificates, and the API server's client certificate for the kubelet.
node_pki() {
  new_cert kubelet ca "/O=system:nodes/CN=system:node:$node_name" clientAuth
  new_cert kubelet-serving ca "/CN=$node_name" serverAuth "DNS:$node_name,IP:127.0.0.1"
}

node_containerd_config() {
  cat <<TOML
# containerd for ebb's test node: everything under $node_dir, nothing listens off loopback.
version = 3
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
# Plugins that would write outside the state folder (/opt/containerd, /var/run/nri) or are
# not used (tracing, other snapshotters).
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.native", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = "$node_dir/containerd.sock"
[ttrpc]
  address = "$node_dir/containerd.sock.ttrpc"
[metrics]
  address = ""

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  # kubectl logs/exec/port-forward: the API server → kubelet → this server, on loopback.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$pause_image"

[plugins.'io.containerd.cri.v1.runtime']
  # This VM's root lacks CAP_SYS_RESOURCE: runc cannot lower its own oom_score_adj.
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$node_dir/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
TOML
}

node_kubelet_config() {
  cat <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kubelet_port
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
readOnlyPort: 0
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$node_dir/containerd.sock
cgroupDriver: cgroupfs
# The VM's cgroups are a v1/hybrid layout held by its init: kubelet >= 1.35 refuses that by default.
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
podLogsDir: $node_dir/pod-logs
# A small shared disk must not evict the tests' pods: absolute floors, as a percentage of a
# large shared disk (1% of 250 GB) is gigabytes that a busy build machine may not have free,
# and pods evicted under DiskPressure look like pods that stop answering.
evictionHard: {memory.available: "50Mi", nodefs.available: "${node_min_free_mib}Mi", nodefs.inodesFree: "1%", imagefs.available: "${node_min_free_mib}Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
resolvConf: /etc/resolv.conf
YAML
}

# The `kubernetes` Service's ClusterIP (what in-cluster clients dial, port 443) answers on
# loopback: a DNAT to the API server, in its own chain (node_down deletes it).
node_route_kubernetes_service() {
  local service_ip
  service_ip="$(first_service_ip "$service_cidr")"
  iptables -w -t nat -N EBB-KUBERNETES-SERVICE
  iptables -w -t nat -A EBB-KUBERNETES-SERVICE -d "$service_ip/32" -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$apiserver_port"
  iptables -w -t nat -A OUTPUT -j EBB-KUBERNETES-SERVICE
}

# node_load <image archive>: makes a local OCI archive an image the node runs (pull policy
# Never or IfNotPresent).
node_load() {
  local output
  # Quiet when it works (ctr warns that cgroup v1 is deprecated at every call).
  output="$("$bin_dir/ctr" --address "$node_dir/containerd.sock" --namespace k8s.io images import "$1" 2>&1)" ||
    die "importing $1 into the node failed: $output"
}

# Before `up` starts anything: one line and exit status 4 when this machine cannot run a node.
node_check() {
  local reason
  reason="$(node_unsupported_reason)"
  [ -z "$reason" ] && return
  echo "control-plane: this machine cannot run a node: $reason" >&2
  exit "$exit_no_node"
}

# node_check_disk <dir>: dies when the disk under <dir> (the kubelet's and containerd's) has
# less than twice the kubelet's eviction floor free: under DiskPressure the kubelet evicts the
# pods and refuses new ones, which a test would see only as pods that never answer.
node_check_disk() {
  local free_mib
  free_mib="$(df -Pm "$1" | awk 'NR == 2 { print $4 }')"
  [ -n "$free_mib" ] || die "cannot read the free space under $1 (df -Pm)"
  [ "$free_mib" -ge $((2 * node_min_free_mib)) ] ||
    die "only $free_mib MiB free under $1: the node's kubelet evicts pods below $node_min_free_mib MiB; free some disk (old target/ folders) and retry"
}

node_up() {
  local started kubelet_port="" kubelet_healthz_port=""
  node_lock
  if [ -f "$node_record/state" ]; then
    echo "control-plane: cleaning up the node a killed run left ($(cat "$node_record/state"))" >&2
    node_down
  fi
  started=$EPOCHREALTIME
  node_dir="$state_dir/node"
  mkdir -p "$node_dir/cni" "$node_dir/kubelet" "$node_dir/pod-logs"
  node_check_disk "$node_dir"
  node_record_host
  pause_image="$("$repo/scripts/image.sh" name pause)"
  [ -f "$repo/target/image/pause.oci.tar" ] || "$repo/scripts/image.sh" build pause >&2
  node_pki
  write_kubeconfig "$state_dir/kubelet.kubeconfig" kubelet
  ebb_free_port kubelet_port
  ebb_free_port kubelet_healthz_port
  echo '{"cniVersion":"0.4.0","name":"loopback-only","plugins":[{"type":"loopback"}]}' >"$node_dir/cni/10-loopback.conflist"
  node_containerd_config >"$node_dir/containerd.toml"
  node_kubelet_config >"$node_dir/kubelet.yaml"
  node_route_kubernetes_service

  # The shim (containerd-shim-runc-v2) is found on PATH.
  PATH="$bin_dir:$PATH" start containerd "$bin_dir/containerd" --config "$node_dir/containerd.toml"
  wait_until "containerd" containerd "$bin_dir/ctr" --address "$node_dir/containerd.sock" version
  node_load "$repo/target/image/pause.oci.tar"
  start kubelet "$bin_dir/kubelet" --config "$node_dir/kubelet.yaml" \
    --kubeconfig "$state_dir/kubelet.kubeconfig" --root-dir "$node_dir/kubelet" \
    --cert-dir "$node_dir/kubelet/pki" --hostname-override "$node_name" --v 1
  wait_until "node $node_name Ready" kubelet "$bin_dir/kubectl" --kubeconfig "$state_dir/kubeconfig" \
    wait --for=condition=Ready --timeout=5s "node/$node_name"
  echo "control-plane: node $node_name Ready in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s (containerd $containerd_version, kubelet $kube_version)" >&2
}
