#!/usr/bin/env bash
# Installs the dojo's Redis: helm/charts/redis, release `redis` in `default`, Service
# `redis-master:6379`, standalone, no password (the official Redis image). Any cluster of the
# current kubeconfig.
#   scripts/deploy-redis.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
ebb_run helm upgrade --install redis helm/charts/redis --namespace default "${ebb_helm_wait[@]}" "$@"
