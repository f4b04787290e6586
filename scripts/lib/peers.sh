# The Python peers of the tests: one venv per tests/peers/<name>/requirements.txt, at
# ${EBB_CACHE_DIR:-~/.cache/ebb}/venv/<name>, where ebb_testkit::peers looks for them.
# Source it, don't run it. Python runs only as a real peer in tests; product code is Rust.
# shellcheck shell=bash

ebb_venv_root="${EBB_CACHE_DIR:-$HOME/.cache/ebb}/venv"

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
