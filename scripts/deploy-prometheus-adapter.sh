#!/usr/bin/env bash
# Installs prometheus-adapter as the dojo's step 7 solution: the chart (pinned), release
# `prometheus-adapter` in `prometheus`, values helm/values/prometheus-adapter.yaml. Only one
# server can own v1beta1.custom.metrics.k8s.io: an `ebb metrics-api` release (step 11) is
# uninstalled first. Any cluster of the current kubeconfig; needs the chart repository.
#   scripts/deploy-prometheus-adapter.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
ebb_run helm uninstall metrics-api --namespace prometheus --ignore-not-found
ebb_run helm upgrade --install prometheus-adapter prometheus-adapter \
  --repo "$EBB_COMMUNITY_REPO" --version "$EBB_ADAPTER_CHART_VERSION" \
  --namespace prometheus --create-namespace \
  --values helm/values/prometheus-adapter.yaml "${ebb_helm_wait[@]}" "$@"
