#!/usr/bin/env bash
# The dojo's "update the consumer release": installs helm/charts/consumer as it is now.
#   scripts/update-consumer.sh [extra helm flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
helm upgrade --install consumer helm/charts/consumer --namespace default "$@"
