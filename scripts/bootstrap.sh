#!/usr/bin/env bash
# The dojo's cluster on kind (needs Docker running, kind, kubectl, helm, jq): a Kubernetes 1.37
# node with the dojo's controller-manager flags (kind-cluster.yaml), the ebb image built by
# scripts/image.sh (no daemon: target/image/ebb.oci.tar) and loaded with kind load image-archive,
# Traefik as the ingress on ports 80/443 (*.vcap.me), Redis, the producer and the
# consumer.
#   scripts/bootstrap.sh [--exercise]   the exercise's starting point: no autoscaling yet
#   scripts/bootstrap.sh --solution     the finished pipeline of steps 4 to 9 in one go:
#                                       Prometheus, the exporter, the adapter, the rule, the HPA
#   scripts/bootstrap.sh --docker-build …
#                                       build the image from the Dockerfile instead (the same
#                                       image, for machines without umoci or a Rust toolchain)
#   scripts/bootstrap.sh --dry-run …    print the commands instead of running them
# Every ebb chart (producer, consumer, metrics-api, operator) runs that one image ($EBB_IMAGE)
# with its own subcommand; the deploy scripts pass the image to each chart.
# Pinned versions and why: scripts/lib/dojo.sh and docs/dojo/01-bootstrap.md.
set -euo pipefail
# shellcheck source=scripts/lib/dojo.sh
. "$(dirname "$0")/lib/dojo.sh"
mode=--exercise
image_build=image.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --exercise | --solution) mode=$1 ;;
    --wait) ;; # always waits
    --docker-build) image_build=docker ;;
    *) ebb_common_option "$1" || ebb_usage_error "unknown option: $1" ;;
  esac
  shift
done
if [ "$image_build" = docker ]; then
  ebb_require docker kind kubectl helm jq
else
  ebb_require docker kind kubectl helm jq cargo gcc umoci tar
fi
pass_down=(--wait)
[ "$ebb_dry_run" = 0 ] || pass_down+=(--dry-run)

if [ "$ebb_dry_run" = 0 ] && kind get clusters 2>/dev/null | grep -qx "$EBB_KIND_CLUSTER"; then
  echo "bootstrap: kind cluster $EBB_KIND_CLUSTER exists, reusing it"
else
  ebb_run kind create cluster --name "$EBB_KIND_CLUSTER" --config kind-cluster.yaml \
    --image "$EBB_KIND_NODE_IMAGE" --wait 2m
fi
if [ "$image_build" = docker ]; then
  ebb_run docker build --tag "$EBB_IMAGE" .
  ebb_run kind load docker-image "$EBB_IMAGE" --name "$EBB_KIND_CLUSTER"
else
  # The archive names itself docker.io/library/ebb:<version> (io.containerd.image.name), which
  # is what the node makes of the charts' ebb:<version>.
  ebb_run scripts/image.sh build ebb
  ebb_run kind load image-archive target/image/ebb.oci.tar --name "$EBB_KIND_CLUSTER"
fi

ebb_run helm upgrade --install traefik traefik --repo "$EBB_TRAEFIK_REPO" \
  --version "$EBB_TRAEFIK_CHART_VERSION" --namespace traefik --create-namespace \
  --values helm/values/traefik.yaml --wait --timeout 5m
scripts/deploy-redis.sh "${pass_down[@]}"
scripts/deploy-producer.sh "${pass_down[@]}"
if [ "$mode" = --solution ]; then
  # The consumer last: its PrometheusRule renders only once the monitoring API exists.
  scripts/deploy-prometheus.sh "${pass_down[@]}"
  scripts/deploy-prometheus-redis-exporter.sh "${pass_down[@]}"
  scripts/deploy-prometheus-adapter.sh "${pass_down[@]}"
  scripts/deploy-consumer.sh --solution "${pass_down[@]}"
  next="ebb dojo check all"
else
  scripts/deploy-consumer.sh --exercise "${pass_down[@]}"
  next="ebb dojo check bootstrap, then docs/dojo/02-try-the-app.md"
fi
[ "$ebb_dry_run" = 1 ] || echo "bootstrap: done. Try: curl -X POST producer.vcap.me/publish/10; next: $next"
