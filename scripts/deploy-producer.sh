#!/usr/bin/env bash
# Installs the producer (`ebb producer`): helm/charts/producer, release `producer` in `default`,
# with its Ingress on producer.vcap.me. Any cluster of the current kubeconfig.
#   scripts/deploy-producer.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
ebb_run helm upgrade --install producer helm/charts/producer --namespace default \
  "${ebb_image_values[@]}" "${ebb_helm_wait[@]}" "$@"
