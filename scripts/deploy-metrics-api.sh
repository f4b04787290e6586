#!/usr/bin/env bash
# Installs `ebb metrics-api` as the dojo's step 11: helm/charts/metrics-api, release
# `metrics-api` in `prometheus`, serving custom.metrics.k8s.io from Redis (redis_items_in_queue
# with key=padok on the Service prometheus-redis-exporter, the HPA unchanged). Only one server
# can own v1beta1.custom.metrics.k8s.io: prometheus-adapter (step 7) is uninstalled first.
# Any cluster of the current kubeconfig.
#   scripts/deploy-metrics-api.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
if [ ! -f helm/charts/metrics-api/Chart.yaml ]; then
  echo "$(basename "$0"): helm/charts/metrics-api is not in this checkout (it comes with ebb metrics-api, issue 8)" >&2
  [ "$ebb_dry_run" = 1 ] || exit 1
fi
ebb_run helm uninstall prometheus-adapter --namespace prometheus --ignore-not-found
# The chart's default Redis, redis-master:6379, would resolve in its own namespace.
ebb_run helm upgrade --install metrics-api helm/charts/metrics-api \
  --namespace prometheus --create-namespace --set redis.server=redis-master.default:6379 \
  "${ebb_image_values[@]}" "${ebb_helm_wait[@]}" "$@"
