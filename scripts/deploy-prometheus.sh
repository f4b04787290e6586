#!/usr/bin/env bash
# Installs Prometheus as the dojo's step 4 solution: kube-prometheus-stack (pinned), release
# `prometheus` in `prometheus`, values helm/values/kube-prometheus-stack.yaml (scrape every 5 s,
# every rule and ServiceMonitor of the cluster, ingress prometheus.vcap.me). Any cluster of the
# current kubeconfig; needs the chart repository on the network.
#   scripts/deploy-prometheus.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
ebb_run helm upgrade --install prometheus kube-prometheus-stack \
  --repo "$EBB_COMMUNITY_REPO" --version "$EBB_KPS_CHART_VERSION" \
  --namespace prometheus --create-namespace \
  --values helm/values/kube-prometheus-stack.yaml "${ebb_helm_wait[@]}" "$@"
