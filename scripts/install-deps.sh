#!/usr/bin/env bash
# Installs what ebb's demo, tests and benchmarks need on a fresh Debian machine with Rust.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

# Debian package → a command (or an absolute path) it provides, to tell whether it is installed.
declare -A packages=(
  [redis-server]=redis-server
  [redis-tools]=redis-benchmark
  [prometheus]=prometheus
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [shellcheck]=shellcheck
  [wrk]=wrk
  [jq]=jq
  # The Sidekiq peer (tests/peers/sidekiq): Sidekiq 6.4.1 and ruby 3.1.
  [ruby-sidekiq]=/usr/bin/sidekiq
  # The Python peers' venvs (scripts/lib/peers.sh).
  [python3-venv]=/usr/share/doc/python3-venv
  # The Node peers (tests/peers/*/package-lock.json, scripts/lib/peers.sh).
  [nodejs]=node
  [npm]=npm
  [curl]=curl
  [openssl]=openssl
  [iproute2]=ss
  # The test node (scripts/control-plane.sh up --node) and the image (scripts/image.sh).
  [runc]=runc
  [containernetworking-plugins]=/usr/lib/cni/loopback
  [iptables]=iptables
  [umoci]=umoci
  [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
  [gcc]=gcc
)

missing=()
for package in "${!packages[@]}"; do
  command -v "${packages[$package]}" >/dev/null 2>&1 || [ -e "${packages[$package]}" ] || missing+=("$package")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

# Go, only to build the upstream tools the Kubernetes tests run.
# shellcheck source=scripts/lib/go.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"
ebb_install_go

# The peers of the tests: Python (tests/peers/*/requirements.txt), one venv each, and Node
# (tests/peers/*/package-lock.json), one npm install each.
# shellcheck source=scripts/lib/peers.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/peers.sh"
ebb_install_peers "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ebb_install_node_peers "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
