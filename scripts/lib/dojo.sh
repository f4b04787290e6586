# What the dojo's cluster scripts share (scripts/bootstrap.sh, deploy-*.sh, teardown.sh):
# the pinned versions, the tool checks, and the dry run. Source it, don't run it.
#
# Every version below was checked against its upstream release page on 2026-11-29
# (docs/dojo/01-bootstrap.md says where and why); each can be overridden by its variable.
# shellcheck shell=bash

ebb_dojo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# kind v0.33.0's image for Kubernetes 1.37.0, by digest as kind asks. 1.37 on purpose: the
# HPA's division by zero (docs/dojo/10-bug-hunt.md) is fixed after it.
EBB_KIND_NODE_IMAGE=${EBB_KIND_NODE_IMAGE:-kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5}
EBB_KIND_CLUSTER=${EBB_KIND_CLUSTER:-ebb-dojo}
# ingress-nginx was retired in March 2026: Traefik serves the same Ingress objects.
EBB_TRAEFIK_CHART_VERSION=${EBB_TRAEFIK_CHART_VERSION:-42.3.0}
EBB_TRAEFIK_REPO=${EBB_TRAEFIK_REPO:-https://traefik.github.io/charts}
EBB_COMMUNITY_REPO=${EBB_COMMUNITY_REPO:-https://prometheus-community.github.io/helm-charts}
EBB_KPS_CHART_VERSION=${EBB_KPS_CHART_VERSION:-90.0.0}
EBB_REDIS_EXPORTER_CHART_VERSION=${EBB_REDIS_EXPORTER_CHART_VERSION:-6.38.0}
EBB_ADAPTER_CHART_VERSION=${EBB_ADAPTER_CHART_VERSION:-5.4.0}
# The image every ebb chart runs (producer, consumer, metrics-api, operator).
EBB_IMAGE=${EBB_IMAGE:-ebb:0.1.0}
# The chart values that select it; each chart picks its own subcommand (its args).
# shellcheck disable=SC2034 # read by the deploy scripts of ebb's charts
ebb_image_values=(--set "image.repository=${EBB_IMAGE%:*}" --set "image.tag=${EBB_IMAGE##*:}")

# Set by ebb_dojo_options: 1 prints the commands instead of running them.
ebb_dry_run=0

# ebb_install_hint <tool>: one line saying how to get it.
ebb_install_hint() {
  case "$1" in
    docker) echo "install Docker (https://docs.docker.com/engine/install/) and start it" ;;
    kind) echo "go install sigs.k8s.io/kind@v0.33.0, or https://kind.sigs.k8s.io/docs/user/quick-start/#installation" ;;
    kubectl) echo "https://kubernetes.io/docs/tasks/tools/ (Debian: apt-get install kubernetes-client)" ;;
    helm) echo "https://helm.sh/docs/intro/install/ (helm 3.14 or newer)" ;;
    jq) echo "apt-get install jq, or https://jqlang.org/download/" ;;
    cargo) echo "https://rustup.rs (or build the image with --docker-build)" ;;
    gcc) echo "apt-get install gcc libc6-dev (or build the image with --docker-build)" ;;
    umoci) echo "apt-get install umoci, or https://github.com/opencontainers/umoci/releases (or build the image with --docker-build)" ;;
    *) echo "install $1" ;;
  esac
}

# ebb_require <tool>…: fails naming every missing tool and how to install it; `docker` also
# has to answer (a daemon that is not running is the usual cause of a failed kind cluster).
# In a dry run, missing tools are only reported.
ebb_require() {
  local tool missing=0
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$(basename "$0"): missing tool: $tool — $(ebb_install_hint "$tool")" >&2
      missing=1
    elif [ "$tool" = docker ] && ! docker info >/dev/null 2>&1; then
      echo "$(basename "$0"): docker is installed but its daemon does not answer: start it (sudo systemctl start docker)" >&2
      missing=1
    fi
  done
  if [ "$missing" = 1 ]; then
    if [ "$ebb_dry_run" = 1 ]; then
      echo "$(basename "$0"): (dry run: going on without them)" >&2
    else
      exit 1
    fi
  fi
}

# ebb_run <command…>: runs it, or prints it, quoted for the shell, in a dry run.
ebb_run() {
  if [ "$ebb_dry_run" = 1 ]; then
    local quoted
    printf -v quoted '%q ' "$@"
    echo "${quoted% }"
  else
    "$@"
  fi
}

# ebb_usage_error <message>: one line on stderr, exit 2.
ebb_usage_error() {
  echo "$(basename "$0"): $1 (see --help)" >&2
  exit 2
}

# ebb_print_help: the script's header comment (the lines after the shebang, up to the first
# line that is not a comment), without the leading '# '.
ebb_print_help() {
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$0"
}

# ebb_common_option <arg>: handles the options every dojo script takes (--dry-run, --wait,
# --help); returns 1 for anything else. --wait sets ebb_helm_wait to helm's --wait.
# shellcheck disable=SC2034 # read by the scripts that source this file
ebb_helm_wait=()
# shellcheck disable=SC2034 # ebb_helm_wait and ebb_dry_run are read by the sourcing scripts
ebb_common_option() {
  case "$1" in
    --dry-run) ebb_dry_run=1 ;;
    --wait) ebb_helm_wait=(--wait --timeout 10m) ;;
    -h | --help)
      ebb_print_help
      exit 0
      ;;
    *) return 1 ;;
  esac
}

# ebb_deploy_options "$@": the whole command line of a deploy script that takes only the
# common options, then `--` and helm flags: the options are handled, the helm flags are left
# in ebb_helm_args (the script then does `set -- "${ebb_helm_args[@]}"`). Those scripts parsed
# their arguments with the same loop each; it is written once here.
ebb_helm_args=()
# shellcheck disable=SC2034 # ebb_helm_args is read by the sourcing scripts
ebb_deploy_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --)
        shift
        ebb_helm_args=("$@")
        return 0
        ;;
      *) ebb_common_option "$1" || ebb_usage_error "unknown option: $1" ;;
    esac
    shift
  done
}

# The scripts print and run paths relative to the repository, whatever the caller's folder.
cd "$ebb_dojo_root" || exit 1
