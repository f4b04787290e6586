#!/usr/bin/env bash
# The dojo's "update the consumer release": installs helm/charts/consumer as it is now,
# keeping the values of the last install (--exercise or --solution of deploy-consumer.sh).
#   scripts/update-consumer.sh [--dry-run] [<helm flags>…]   e.g. --set autoscaling.minReplicas=0
set -euo pipefail
dry_run=()
helm_flags=()
for arg in "$@"; do
  if [ "$arg" = --dry-run ]; then dry_run=(--dry-run); else helm_flags+=("$arg"); fi
done
exec "$(dirname "$0")/deploy-consumer.sh" "${dry_run[@]}" -- "${helm_flags[@]}"
