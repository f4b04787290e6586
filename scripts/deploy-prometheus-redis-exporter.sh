#!/usr/bin/env bash
# Installs the Redis exporter as the dojo's step 5 solution: prometheus-redis-exporter (pinned),
# release `prometheus-redis-exporter` in `default`, values
# helm/values/prometheus-redis-exporter.yaml (redis-master, key `padok`, a ServiceMonitor).
# Any cluster of the current kubeconfig; needs the chart repository on the network.
#   scripts/deploy-prometheus-redis-exporter.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
ebb_run helm upgrade --install prometheus-redis-exporter prometheus-redis-exporter \
  --repo "$EBB_COMMUNITY_REPO" --version "$EBB_REDIS_EXPORTER_CHART_VERSION" \
  --namespace default \
  --values helm/values/prometheus-redis-exporter.yaml "${ebb_helm_wait[@]}" "$@"
