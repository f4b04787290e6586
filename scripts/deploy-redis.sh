#!/usr/bin/env bash
# Installs the dojo's Redis: helm/charts/redis, release `redis` in `default`, Service
# `redis-master:6379`, standalone, no password (the official Redis image). Any cluster of the
# current kubeconfig.
#   scripts/deploy-redis.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift && break ;;
    *) ebb_common_option "$1" || ebb_usage_error "unknown option: $1" ;;
  esac
  shift
done
ebb_require kubectl helm
ebb_run helm upgrade --install redis helm/charts/redis --namespace default "${ebb_helm_wait[@]}" "$@"
