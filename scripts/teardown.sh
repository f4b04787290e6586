#!/usr/bin/env bash
# Ends the dojo.
#   scripts/teardown.sh              deletes the kind cluster (needs Docker and kind)
#   scripts/teardown.sh --releases   uninstalls the dojo's Helm releases from the cluster of the
#                                    current kubeconfig instead (any cluster, kind or not)
#   --dry-run                        prints the commands instead of running them
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
releases=0
while [ $# -gt 0 ]; do
  case "$1" in
    --releases) releases=1 ;;
    *) ebb_common_option "$1" || ebb_usage_error "unknown option: $1" ;;
  esac
  shift
done
if [ "$releases" = 0 ]; then
  ebb_require docker kind
  ebb_run kind delete cluster --name "$EBB_KIND_CLUSTER"
  exit 0
fi
ebb_require kubectl helm
# The reverse of the install order; a release that is not there is not an error.
for release in ebb-operator:ebb-system metrics-api:prometheus prometheus-adapter:prometheus \
  consumer:default prometheus-redis-exporter:default prometheus:prometheus producer:default \
  redis:default traefik:traefik; do
  ebb_run helm uninstall "${release%%:*}" --namespace "${release#*:}" --ignore-not-found --wait
done
