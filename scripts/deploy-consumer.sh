#!/usr/bin/env bash
# Installs the consumer (`ebb consumer`): helm/charts/consumer, release `consumer` in `default`.
# Any cluster of the current kubeconfig.
#   scripts/deploy-consumer.sh --exercise   without the chart's PrometheusRule and HPA
#                                           (helm/values/consumer-exercise.yaml): you write yours
#   scripts/deploy-consumer.sh --solution   with them: the dojo's solution
#                                           (helm/values/consumer-solution.yaml)
#   scripts/deploy-consumer.sh              the chart as it is now, keeping the values of the
#                                           last install (what scripts/update-consumer.sh runs)
# Also: --wait, --dry-run, and helm flags after `--` (e.g. -- --set autoscaling.minReplicas=0).
# The PrometheusRule renders only where the monitoring.coreos.com/v1 API exists: install
# Prometheus (scripts/deploy-prometheus.sh) first.
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
values=(--reset-then-reuse-values)
while [ $# -gt 0 ]; do
  case "$1" in
    --exercise) values=(--values helm/values/consumer-exercise.yaml) ;;
    --solution) values=(--values helm/values/consumer-solution.yaml) ;;
    --) shift && break ;;
    *) ebb_common_option "$1" || ebb_usage_error "unknown option: $1" ;;
  esac
  shift
done
ebb_require kubectl helm
ebb_run helm upgrade --install consumer helm/charts/consumer --namespace default \
  "${values[@]}" "${ebb_image_values[@]}" "${ebb_helm_wait[@]}" "$@"
