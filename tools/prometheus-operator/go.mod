// Pins prometheus-operator; only its CRD manifests (example/prometheus-operator-crd) are used,
// so the API server knows PrometheusRule and the consumer chart's rule can be applied.
module ebb.local/tools/prometheus-operator

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
