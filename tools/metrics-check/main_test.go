package main

import "testing"

// The strict check is what catches a misspelled field that the lenient client decoding would
// drop: each case is a body as a server might send it.
func TestStrictCheck(t *testing.T) {
	const v1beta1 = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue"
	const v1beta2 = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue"
	const external = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/redis_items_in_queue"
	cases := []struct {
		name, path, body, want string
		status                 int
	}{
		{"v1beta1 upstream shape", v1beta1, `{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},"items":[{"describedObject":{"kind":"Service","namespace":"default","name":"prometheus-redis-exporter","apiVersion":"/v1"},"metricName":"redis_items_in_queue","timestamp":"2026-11-29T12:00:00Z","value":"100","selector":null}]}`, "ok", 200},
		{"v1beta1 misspelled metricName", v1beta1, `{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},"items":[{"describedObject":{"kind":"Service","name":"x","apiVersion":"/v1"},"metricname":"redis_items_in_queue","timestamp":"2026-11-29T12:00:00Z","value":"100"}]}`, "strict: unknown field \"items[0].metricname\"", 200},
		{"v1beta2 item with v1beta1 fields", v1beta2, `{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":[{"describedObject":{"kind":"Service","name":"x","apiVersion":"/v1"},"metricName":"m","timestamp":"2026-11-29T12:00:00Z","value":"1"}]}`, "strict: unknown field \"items[0].metricName\"", 200},
		{"external wrong kind", external, `{"kind":"MetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[]}`, `kind/apiVersion "MetricValueList"/"external.metrics.k8s.io/v1beta1", want "ExternalMetricValueList"/"external.metrics.k8s.io/v1beta1"`, 200},
		{"Status for an error", v1beta1, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"m","reason":"NotFound","code":404}`, "ok", 404},
		{"Status with an extra field", v1beta1, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","error":"m","code":404}`, "strict: unknown field \"error\"", 404},
	}
	for _, c := range cases {
		if got := strictCheck(c.path, c.status, []byte(c.body)); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
