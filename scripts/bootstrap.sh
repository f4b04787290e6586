#!/usr/bin/env bash
# The dojo's starting point on a real kind cluster (needs Docker, kind, kubectl, helm):
# ingress-nginx, Redis, the producer and the consumer, with no autoscaling yet.
#   scripts/bootstrap.sh              the exercise's starting point
#   scripts/bootstrap.sh --solution   everything the dojo's solution deploys
set -euo pipefail
cd "$(dirname "$0")/.."

image="ebb:0.1.0"
cluster="ebb-dojo"

kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --config kind-cluster.yaml
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

helm upgrade --install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx \
  --namespace ingress-nginx --create-namespace \
  --set controller.hostPort.enabled=true --set controller.service.type=NodePort \
  --set-string controller.nodeSelector.ingress-ready=true --wait
helm upgrade --install redis oci://registry-1.docker.io/bitnamicharts/redis \
  --namespace default --values helm/values/redis.yaml --wait
helm upgrade --install producer helm/charts/producer --namespace default

if [ "${1:-}" = "--solution" ]; then
  community=https://prometheus-community.github.io/helm-charts
  helm upgrade --install prometheus kube-prometheus-stack --repo "$community" \
    --namespace prometheus --create-namespace --values helm/values/kube-prometheus-stack.yaml --wait
  helm upgrade --install prometheus-redis-exporter prometheus-redis-exporter --repo "$community" \
    --namespace default --values helm/values/prometheus-redis-exporter.yaml
  helm upgrade --install prometheus-adapter prometheus-adapter --repo "$community" \
    --namespace prometheus --values helm/values/prometheus-adapter.yaml
  scripts/update-consumer.sh
else
  # The exercise adds the recording rule and the HPA to the consumer chart.
  helm upgrade --install consumer helm/charts/consumer --namespace default \
    --set autoscaling.enabled=false --set queueMetric.recordingRule.enabled=false
fi

echo "bootstrap: done. Try: curl -X POST producer.vcap.me/publish/10"
