# The peers of the tests: one Python venv per tests/peers/<name>/requirements.txt, at
# ${EBB_CACHE_DIR:-~/.cache/ebb}/venv/<name>, and one npm install per
# tests/peers/<name>/package-lock.json, at ${EBB_CACHE_DIR:-~/.cache/ebb}/node/<name>, where
# ebb_testkit::peers looks for them. Source it, don't run it. Python and Node run only as real
# peers in tests; product code is Rust.
# shellcheck shell=bash

ebb_venv_root="${EBB_CACHE_DIR:-$HOME/.cache/ebb}/venv"
ebb_node_root="${EBB_CACHE_DIR:-$HOME/.cache/ebb}/node"

# Creates or refreshes each peer's venv. A venv is rebuilt from scratch when its recorded
# requirements hash (of the file and the Python that built it) differs from the current one,
# so that a removed pin cannot linger; otherwise it is left alone (no pip run at all).
ebb_install_peers() {
  local repo=$1 requirements name venv wanted
  for requirements in "$repo"/tests/peers/*/requirements.txt; do
    [ -e "$requirements" ] || continue
    name=$(basename "$(dirname "$requirements")")
    venv="$ebb_venv_root/$name"
    wanted=$( { python3 --version; cat "$requirements"; } | sha256sum | cut -d' ' -f1)
    if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$wanted" ]; then
      continue
    fi
    echo "install-deps: building the $name peer venv at $venv"
    rm -rf "$venv"
    mkdir -p "$ebb_venv_root"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$requirements"
    echo "$wanted" >"$venv/.requirements.sha256"
  done
}

# Installs each Node peer's packages exactly as its package-lock.json pins them (`npm ci`, which
# refuses a lockfile out of step with package.json), into its own folder of the cache. Done
# again from scratch only when the hash of the lockfile, package.json and the node that ran it
# changes; otherwise npm is not run at all. Install scripts are not run: none is needed
# (msgpackr-extract's native build is optional, msgpackr falls back to JavaScript).
ebb_install_node_peers() {
  local repo=$1 lock peer name dir wanted
  for lock in "$repo"/tests/peers/*/package-lock.json; do
    [ -e "$lock" ] || continue
    peer=$(dirname "$lock")
    name=$(basename "$peer")
    dir="$ebb_node_root/$name"
    wanted=$( { node --version; cat "$peer/package.json" "$lock"; } | sha256sum | cut -d' ' -f1)
    if [ -d "$dir/node_modules" ] && [ "$(cat "$dir/.lock.sha256" 2>/dev/null)" = "$wanted" ]; then
      continue
    fi
    echo "install-deps: installing the $name Node peer at $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$peer/package.json" "$lock" "$dir/"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$wanted" >"$dir/.lock.sha256"
  done
}
