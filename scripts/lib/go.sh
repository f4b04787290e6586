# The Go toolchain that builds the upstream tools the Kubernetes tests run (scripts/control-plane.sh).
# Source it, don't run it. Product code is Rust: Go only builds kube-apiserver & co. from tools/.
# shellcheck shell=bash

ebb_go_version=1.26.8
ebb_go_home="${EBB_CACHE_DIR:-$HOME/.cache/ebb}/go$ebb_go_version"

# Prints the path of a go command new enough (≥ 1.26), or nothing.
ebb_go() {
  local go
  for go in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go "$ebb_go_home/bin/go"; do
    if [ -x "$go" ] && GOTOOLCHAIN=local "$go" version 2>/dev/null | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then
      echo "$go"
      return
    fi
  done
}

# Installs go$ebb_go_version into $ebb_go_home when no suitable go is there. Debian's golang-go
# (1.19) only bootstraps: it fetches the official toolchain from the Go module proxy, as a module
# (golang.org/toolchain), the way newer go commands switch toolchains themselves.
ebb_install_go() {
  [ -n "$(ebb_go)" ] && return
  local bootstrap sudo="" scratch dir
  [ "$(id -u)" = 0 ] || sudo="sudo"
  bootstrap=$(command -v go || true)
  if [ -z "$bootstrap" ]; then
    echo "install-deps: installing golang-go to bootstrap go$ebb_go_version"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends golang-go >/dev/null
    bootstrap=$(command -v go)
  fi
  echo "install-deps: fetching go$ebb_go_version from the Go module proxy"
  scratch=$(mktemp -d)
  dir=$(cd "$scratch" && GOTOOLCHAIN=local GOMODCACHE="$scratch/mod" GOFLAGS=-modcacherw \
    "$bootstrap" mod download -json "golang.org/toolchain@v0.0.1-go$ebb_go_version.linux-amd64" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "install-deps: could not fetch go$ebb_go_version" >&2; rm -rf "$scratch"; return 1; }
  rm -rf "$ebb_go_home"
  mkdir -p "$(dirname "$ebb_go_home")"
  cp -r "$dir" "$ebb_go_home"
  # Module zips carry no file modes.
  chmod -R u+w "$ebb_go_home"
  chmod +x "$ebb_go_home"/bin/* "$ebb_go_home"/pkg/tool/*/*
  rm -rf "$scratch"
  "$ebb_go_home/bin/go" version
}
