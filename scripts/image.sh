#!/usr/bin/env bash
# ebb's container image, built without a daemon (umoci writes the OCI layout), and run with a
# real OCI runtime (runc) on the host network.
#
#   scripts/image.sh build [ebb|pause|redis]
#                                        target/image/<image>.oci.tar (an OCI image archive)
#   scripts/image.sh name  [ebb|pause|redis]
#                                        the reference the node knows it by
#   scripts/image.sh stage [ebb|pause|redis] <dir>
#                                        only fill <dir> with the image's files (the
#                                        Dockerfile's build stage runs this)
#   scripts/image.sh run [-e KEY=VALUE]… [-v HOST[:CONTAINER]]… -- <ebb arguments>
#                                        runs the ebb image (built first if missing), host
#                                        network, read-only root, -v mounts read-only
#
#   ebb    the release binary (glibc: the musl target is not installed here) and the shared
#          libraries `ldd` names, /etc/passwd with nobody, /etc/nsswitch.conf and /etc/hosts
#          (name resolution: glibc's files and dns modules are inside libc.so.6 since 2.34);
#          TLS roots are compiled in (webpki-roots), `--redis-ca` adds a private CA.
#          User 65534, entrypoint ebb, OCI labels with the version. The Dockerfile describes
#          the same image.
#   pause  scripts/image/pause.c, static: the node's sandbox image (containerd's pinned
#          `sandbox` image, see scripts/lib/node.sh).
#   redis  Debian's redis-server and redis-cli (the readiness probe of helm/charts/redis) with
#          the shared libraries `ldd` names, user redis (999, as the official image and the
#          chart), entrypoint redis-server: helm/charts/redis on the test node, which cannot
#          pull the official image offline (--set image.repository=ebb-redis).
#
# Needs cargo, gcc (with the static libc, libc6-dev), umoci, jq, tar, gzip; `run` needs runc;
# redis needs redis-server and redis-tools.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo/target/image"
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml")"

die() {
  echo "image: $*" >&2
  exit 1
}

# name <image>: as containerd normalizes the charts' `ebb:<version>`.
name() {
  case "$1" in
  ebb) echo "docker.io/library/ebb:$version" ;;
  pause) echo "docker.io/library/ebb-pause:$version" ;;
  redis) echo "docker.io/library/ebb-redis:$version" ;;
  *) die "unknown image '$1': ebb, pause or redis" ;;
  esac
}

# stage_ebb <rootfs>: the release binary, the libraries it loads, and the few files glibc reads.
stage_ebb() {
  local rootfs="$1" library
  # Without the variables `cargo test`/`cargo run` give their children: some crates' build
  # fingerprints track them, and a release build from a test would then start over.
  local unset=() variable
  for variable in $(compgen -e); do
    case "$variable" in
    CARGO_PKG_* | CARGO_MANIFEST_* | CARGO_CRATE_* | CARGO_BIN_* | CARGO_PRIMARY_* | CARGO_TARGET_TMPDIR) unset+=(-u "$variable") ;;
    esac
  done
  (cd "$repo" && env "${unset[@]}" cargo build --release --locked -p ebb)
  # Where cargo put it: CARGO_TARGET_DIR, relative to the repository as cargo reads it there.
  local binary="${CARGO_TARGET_DIR:-target}/release/ebb"
  [[ "$binary" == /* ]] || binary="$repo/$binary"
  install -D -m 0755 "$binary" "$rootfs/usr/local/bin/ebb"
  strip "$rootfs/usr/local/bin/ebb"
  stage_libraries "$rootfs" "$binary"
  stage_etc "$rootfs" 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' 'nogroup:x:65534:'
}

# stage_libraries <rootfs> <binary>…: the shared libraries the binaries load, at the paths
# `ldd` prints ("name => /path (address)", the loader as "/path (address)").
stage_libraries() {
  local rootfs="$1" binary library
  shift
  for library in $(for binary in "$@"; do ldd "$binary"; done | grep -oE '/[^ ]+' | sort -u); do
    install -D -m 0755 "$(readlink -f "$library")" "$rootfs$library"
  done
}

# stage_etc <rootfs> <passwd line> <group line>: the image's user and the few files glibc reads.
stage_etc() {
  local rootfs="$1"
  mkdir -p "$rootfs/etc" "$rootfs/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\n%s\n' "$2" >"$rootfs/etc/passwd"
  printf 'root:x:0:\n%s\n' "$3" >"$rootfs/etc/group"
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  # Runtimes (kubelet, `run` below) replace these with the host's or the pod's.
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$rootfs/etc/hosts"
  : >"$rootfs/etc/resolv.conf"
}

# stage_redis <rootfs>: Debian's Redis binaries (redis-server is a link to redis-check-rdb,
# which picks its role from its own name: copied under the server's name).
stage_redis() {
  local rootfs="$1" binary
  for binary in redis-server redis-cli; do
    command -v "$binary" >/dev/null || die "$binary is not installed: apt-get install redis-server redis-tools"
    install -D -m 0755 "$(readlink -f "$(command -v "$binary")")" "$rootfs/usr/bin/$binary"
  done
  stage_libraries "$rootfs" "$rootfs/usr/bin/redis-server" "$rootfs/usr/bin/redis-cli"
  stage_etc "$rootfs" 'redis:x:999:999:redis:/data:/sbin/nologin' 'redis:x:999:'
  # The working directory, where the chart mounts its emptyDir.
  mkdir -p "$rootfs/data"
}

stage_pause() {
  local rootfs="$1"
  mkdir -p "$rootfs"
  gcc -static -Os -s -o "$rootfs/pause" "$repo/scripts/image/pause.c"
}

build() {
  local image="${1:-ebb}" scratch layout started
  started=$EPOCHREALTIME
  name "$image" >/dev/null
  for tool in umoci jq gcc tar; do
    command -v "$tool" >/dev/null || die "$tool is not installed: scripts/install-deps.sh installs it"
  done
  scratch="$(mktemp -d)"
  # shellcheck disable=SC2064 # the folder is known now
  trap "rm -rf '$scratch'" EXIT
  layout="$scratch/layout"
  "stage_$image" "$scratch/rootfs"
  local revision created
  revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  created="$(date -u -d "@$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)" +%Y-%m-%dT%H:%M:%SZ)"
  umoci init --layout "$layout"
  umoci new --image "$layout:$version"
  umoci insert --image "$layout:$version" "$scratch/rootfs" / >/dev/null
  local entrypoint=/usr/local/bin/ebb user=65534:65534 workdir=/ path=/usr/local/bin title=ebb
  local description="ebb: queue-driven autoscaling for Kubernetes"
  case "$image" in
  pause) entrypoint=/pause title=ebb-pause ;;
  redis)
    entrypoint=/usr/bin/redis-server user=999:999 workdir=/data path=/usr/bin title=ebb-redis
    description="Debian's Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') for ebb's test node (the dojo's helm/charts/redis)"
    ;;
  esac
  umoci config --image "$layout:$version" --os linux --architecture amd64 --created "$created" \
    --config.user "$user" --config.entrypoint "$entrypoint" --config.workingdir "$workdir" \
    --config.env "PATH=$path" \
    --config.label "org.opencontainers.image.title=$title" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.revision=$revision" \
    --config.label "org.opencontainers.image.created=$created" \
    --config.label "org.opencontainers.image.description=$description"
  umoci gc --layout "$layout"
  # The name containerd (ctr import) and podman (oci-archive) read from the index.
  jq --arg name "$(name "$image")" '.manifests[0].annotations = {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": $name}' \
    "$layout/index.json" >"$scratch/index.json"
  mv "$scratch/index.json" "$layout/index.json"
  mkdir -p "$out"
  tar --sort=name --owner=0 --group=0 --numeric-owner -cf "$out/$image.oci.tar.new" -C "$layout" oci-layout index.json blobs
  mv "$out/$image.oci.tar.new" "$out/$image.oci.tar"
  echo "image: $out/$image.oci.tar ($(name "$image")): $(layer_sizes "$layout"), built in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s" >&2
}

# layer_sizes <layout>: what a registry stores and a node pulls (the gzip layers, as the
# manifest records them) and what the node unpacks (the layers' tar streams), in MB (10^6
# bytes): the figures the docs quote.
layer_sizes() {
  local layout="$1" manifest compressed=0 uncompressed=0 digest size
  manifest="$layout/blobs/$(jq -r '.manifests[0].digest | sub(":"; "/")' "$layout/index.json")"
  while read -r digest size; do
    compressed=$((compressed + size))
    uncompressed=$((uncompressed + $(gzip -dc "$layout/blobs/${digest/://}" | wc -c)))
  done < <(jq -r '.layers[] | "\(.digest) \(.size)"' "$manifest")
  awk -v c="$compressed" -v u="$uncompressed" \
    'BEGIN { printf "%.1f MB compressed (gzip layer, %d bytes), %.1f MB uncompressed (%d bytes)", c / 1e6, c, u / 1e6, u }'
}

run() {
  local envs=() mounts=() scratch
  while (($#)); do
    case "$1" in
    -e) envs+=("$2") && shift 2 ;;
    -v) mounts+=("$2") && shift 2 ;;
    --) shift && break ;;
    *) die "run: unexpected '$1' (usage: run [-e KEY=VALUE]… [-v HOST[:CONTAINER]]… -- <ebb arguments>)" ;;
    esac
  done
  command -v runc >/dev/null || die "runc is not installed: apt-get install runc"
  [ -f "$out/ebb.oci.tar" ] || build ebb
  scratch="$(mktemp -d)"
  # shellcheck disable=SC2064 # the folder is known now
  trap "rm -rf '$scratch'" EXIT
  mkdir "$scratch/layout"
  tar -xf "$out/ebb.oci.tar" -C "$scratch/layout"
  # umoci finds an image by its ref.name as a bare tag: the version, not the full reference.
  jq --arg tag "$version" '.manifests[0].annotations["org.opencontainers.image.ref.name"] = $tag' \
    "$scratch/layout/index.json" >"$scratch/index.json"
  mv "$scratch/index.json" "$scratch/layout/index.json"
  umoci unpack --image "$scratch/layout:$version" "$scratch/bundle" >/dev/null
  local mount_json='[]' mount host target
  for mount in /etc/hosts /etc/resolv.conf "${mounts[@]}"; do
    host="${mount%%:*}"
    target="${mount#*:}"
    mount_json="$(jq --arg s "$host" --arg d "$target" '. + [{destination: $d, source: $s, type: "bind", options: ["rbind", "ro"]}]' <<<"$mount_json")"
  done
  local env_json
  env_json="$(printf '%s\n' "${envs[@]}" | jq -R . | jq -s 'map(select(length > 0))')"
  # Host network (no network namespace), a read-only root, the image's user and entrypoint.
  local args_json
  # Not jq's --args: jq 1.6 reads a later `--flag` as one of its own options.
  args_json="$(printf '%s\n' "$@" | jq -R . | jq -s .)"
  jq --argjson mounts "$mount_json" --argjson env "$env_json" --argjson args "$args_json" \
    '.linux.namespaces |= map(select(.type != "network")) | .root.readonly = true
     | .process.terminal = false | .process.args = [.process.args[0]] + $args
     | .process.env += $env | .mounts += $mounts' \
    <"$scratch/bundle/config.json" >"$scratch/config.json"
  mv "$scratch/config.json" "$scratch/bundle/config.json"
  # In the background, so that a signal to this script reaches ebb at once (and the EXIT trap
  # deletes the bundle once the container has exited).
  local id="ebb-image-$$" status=0 runc_pid
  runc run --bundle "$scratch/bundle" "$id" </dev/null &
  runc_pid=$!
  local signalled=0
  trap 'signalled=1; runc kill "$id" TERM 2>/dev/null || true' TERM INT
  while :; do
    status=0
    wait "$runc_pid" || status=$?
    # A trapped signal ends `wait` early (status > 128): wait again, for runc's own status.
    ((signalled && status > 128)) || break
    signalled=0
  done
  runc delete --force "$id" >/dev/null 2>&1 || true
  return "$status"
}

case "${1:-}" in
build) build "${2:-ebb}" ;;
stage)
  [ -n "${3:-}" ] || die "usage: $0 stage ebb|pause|redis <dir>"
  name "$2" >/dev/null
  "stage_$2" "$3"
  ;;
name) name "${2:-ebb}" ;;
run) shift && run "$@" ;;
*) die "usage: $0 build [ebb|pause|redis] | name [ebb|pause|redis] | run [-e KEY=VALUE]… [-v HOST[:CONTAINER]]… -- <ebb arguments>" ;;
esac
