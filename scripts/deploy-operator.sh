#!/usr/bin/env bash
# Installs `ebb operator` as the dojo's step 12: helm/charts/operator (the QueueScaler CRD, two
# replicas with leader election, RBAC), release `ebb-operator` in `ebb-system`. Then switch the
# consumer from the HPA to a QueueScaler: scripts/update-consumer.sh --set autoscaler=queueScaler.
# Any cluster of the current kubeconfig.
#   scripts/deploy-operator.sh [--wait] [--dry-run] [-- <helm flags>…]
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
ebb_deploy_options "$@"
set -- "${ebb_helm_args[@]}"
ebb_require kubectl helm
ebb_run helm upgrade --install ebb-operator helm/charts/operator \
  --namespace ebb-system --create-namespace \
  "${ebb_image_values[@]}" "${ebb_helm_wait[@]}" "$@"
