// Command metrics-check is the e2e tests' oracle for ebb's metrics API: it reads
// custom.metrics.k8s.io and external.metrics.k8s.io through a kubeconfig with the clients the
// HorizontalPodAutoscaler itself uses (k8s.io/metrics/pkg/client/custom_metrics and
// external_metrics, a discovery-backed REST mapper, protobuf asked for with JSON accepted), so a
// response is checked by upstream decoding, not by ebb's own types. On top of that, every JSON
// body of those groups is decoded strictly into its upstream Go type: an unknown, duplicated or
// misspelled field fails the check, where the lenient client decoding would drop it silently.
//
// Usage:
//
//	metrics-check [--kubeconfig PATH] discovery
//	metrics-check [--kubeconfig PATH] custom --version v1beta1|v1beta2|preferred --kind Service
//	    [--namespace NS] (--name NAME | --selector LABELS) --metric NAME [--metric-selector LABELS]
//	metrics-check [--kubeconfig PATH] external --namespace NS --metric NAME [--selector LABELS]
//
// It prints one JSON document on stdout: {"result": …, "responses": […]} on success; on failure
// {"error": "…", "code": 404, "reason": "NotFound", "responses": […]} and exit status 1 (2 for a
// usage error). "responses" lists each HTTP response of the metrics groups it saw: path, status,
// content type and, for JSON, the strict decoding's verdict (a protobuf answer, which the HPA's
// content negotiation allows, is decoded by the client only; --content-type application/json
// makes every answer JSON and so strictly checked).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	custommetricsv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
	custommetricsv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	externalmetricsv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	customclient "k8s.io/metrics/pkg/client/custom_metrics"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"
	sigsjson "sigs.k8s.io/json"
)

const (
	notJSON       = "not JSON"
	customGroup   = "custom.metrics.k8s.io"
	externalGroup = "external.metrics.k8s.io"
	// What kube-controller-manager sends by default (--kube-api-content-type).
	protobufContentType = "application/vnd.kubernetes.protobuf"
)

// response is one HTTP response of the metrics groups, as seen on the wire.
type response struct {
	Path        string `json:"path"`
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	// "ok", notJSON (protobuf: decoded by the client only), or the strict decoding's error.
	Strict string `json:"strict"`
}

// recorder keeps every response of the metrics groups and checks its body strictly.
type recorder struct {
	next      http.RoundTripper
	mu        sync.Mutex
	responses []response
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || !metricsPath(req.URL.Path) {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	contentType := resp.Header.Get("Content-Type")
	seen := response{Path: req.URL.RequestURI(), Status: resp.StatusCode, ContentType: contentType}
	if strings.HasPrefix(contentType, "application/json") {
		seen.Strict = strictCheck(req.URL.Path, resp.StatusCode, body)
	} else {
		seen.Strict = notJSON
	}
	r.mu.Lock()
	r.responses = append(r.responses, seen)
	r.mu.Unlock()
	return resp, nil
}

func metricsPath(path string) bool {
	return strings.HasPrefix(path, "/apis/"+customGroup+"/") || strings.HasPrefix(path, "/apis/"+externalGroup+"/") ||
		path == "/apis/"+customGroup || path == "/apis/"+externalGroup
}

// strictCheck decodes body into the upstream type its path and status call for, refusing any
// field that type lacks, and checks its kind and apiVersion.
func strictCheck(path string, status int, body []byte) string {
	parts := strings.Split(strings.Trim(path, "/"), "/") // apis, group, version, …
	var target any
	var kind, apiVersion string
	switch {
	case status >= 300:
		target, kind, apiVersion = &metav1.Status{}, "Status", "v1"
	case len(parts) == 2:
		target, kind, apiVersion = &metav1.APIGroup{}, "APIGroup", "v1"
	case len(parts) == 3:
		target, kind, apiVersion = &metav1.APIResourceList{}, "APIResourceList", "v1"
	case parts[1] == externalGroup && parts[2] == "v1beta1":
		target, kind, apiVersion = &externalmetricsv1beta1.ExternalMetricValueList{}, "ExternalMetricValueList", externalGroup+"/v1beta1"
	case parts[1] == customGroup && parts[2] == "v1beta1":
		target, kind, apiVersion = &custommetricsv1beta1.MetricValueList{}, "MetricValueList", customGroup+"/v1beta1"
	case parts[1] == customGroup && parts[2] == "v1beta2":
		target, kind, apiVersion = &custommetricsv1beta2.MetricValueList{}, "MetricValueList", customGroup+"/v1beta2"
	default:
		return "no upstream type for this path"
	}
	strictErrs, err := sigsjson.UnmarshalStrict(body, target)
	if err != nil {
		return "not decodable: " + err.Error()
	}
	if len(strictErrs) > 0 {
		var messages []string
		for _, e := range strictErrs {
			messages = append(messages, e.Error())
		}
		return "strict: " + strings.Join(messages, "; ")
	}
	var typeMeta metav1.TypeMeta
	if err := json.Unmarshal(body, &typeMeta); err != nil {
		return "not decodable: " + err.Error()
	}
	// Every object names its type, as upstream servers write it (discovery lists included).
	if typeMeta.Kind != kind || typeMeta.APIVersion != apiVersion {
		return fmt.Sprintf("kind/apiVersion %q/%q, want %q/%q", typeMeta.Kind, typeMeta.APIVersion, kind, apiVersion)
	}
	return "ok"
}

type output struct {
	Result    any        `json:"result,omitempty"`
	Error     string     `json:"error,omitempty"`
	Code      int32      `json:"code,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Responses []response `json:"responses"`
}

func main() {
	global := flag.NewFlagSet("metrics-check", flag.ExitOnError)
	kubeconfig := global.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the kube-apiserver (default $KUBECONFIG)")
	contentType := global.String("content-type", protobufContentType, "the content type asked for, JSON accepted besides (kube-controller-manager's default is protobuf)")
	global.Parse(os.Args[1:])
	if global.NArg() < 1 {
		usage("a command is needed: discovery, custom or external")
	}
	command, args := global.Arg(0), global.Args()[1:]

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		usage(fmt.Sprintf("--kubeconfig %q: %v", *kubeconfig, err))
	}
	config.ContentType = *contentType
	config.AcceptContentTypes = *contentType + ",application/json"
	rec := &recorder{}
	config.Wrap(func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec })
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		fail(rec, err)
	}

	var result any
	switch command {
	case "discovery":
		result, err = runDiscovery(discoveryClient)
	case "custom":
		result, err = runCustom(config, discoveryClient, args)
	case "external":
		result, err = runExternal(config, args)
	default:
		usage("unknown command " + command + ": discovery, custom or external")
	}
	if err != nil {
		fail(rec, err)
	}
	for _, seen := range rec.responses {
		if seen.Status < 300 && seen.Strict != "ok" && seen.Strict != notJSON {
			fail(rec, fmt.Errorf("%s: %s", seen.Path, seen.Strict))
		}
	}
	emit(output{Result: result, Responses: rec.responses})
}

// discoveryResult is what the API server advertises for the metrics groups.
type discoveryResult struct {
	Groups    map[string]metav1.APIGroup         `json:"groups"`
	Resources map[string]*metav1.APIResourceList `json:"resources"`
	// The custom metrics version the HPA's client picks.
	PreferredCustomVersion string `json:"preferredCustomVersion,omitempty"`
}

func runDiscovery(client *discovery.DiscoveryClient) (any, error) {
	groups, err := client.ServerGroups()
	if err != nil {
		return nil, err
	}
	result := discoveryResult{Groups: map[string]metav1.APIGroup{}, Resources: map[string]*metav1.APIResourceList{}}
	for _, group := range groups.Groups {
		if group.Name != customGroup && group.Name != externalGroup {
			continue
		}
		result.Groups[group.Name] = group
		for _, version := range group.Versions {
			resources, err := client.ServerResourcesForGroupVersion(version.GroupVersion)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", version.GroupVersion, err)
			}
			result.Resources[version.GroupVersion] = resources
		}
	}
	if _, ok := result.Groups[customGroup]; ok {
		preferred, err := customclient.NewAvailableAPIsGetter(client).PreferredVersion()
		if err != nil {
			return nil, err
		}
		result.PreferredCustomVersion = preferred.String()
	}
	return result, nil
}

// customResult is the upstream client's answer: v1beta1 answers come converted to v1beta2.
type customResult struct {
	Version string                             `json:"version"`
	Items   []custommetricsv1beta2.MetricValue `json:"items"`
}

func runCustom(config *rest.Config, discoveryClient *discovery.DiscoveryClient, args []string) (any, error) {
	flags := flag.NewFlagSet("custom", flag.ExitOnError)
	version := flags.String("version", "preferred", "v1beta1, v1beta2, or preferred (the HPA's choice, from discovery)")
	kind := flags.String("kind", "", "kind of the described object, Kind.group (Service, Deployment.apps, Namespace)")
	namespace := flags.String("namespace", "", "namespace of the described objects; none for root-scoped objects")
	name := flags.String("name", "", "one object by name (GetForObject)")
	selector := flags.String("selector", "", "label selector over the objects, with name `*` (GetForObjects)")
	metric := flags.String("metric", "", "metric name")
	metricSelector := flags.String("metric-selector", "", "metricLabelSelector")
	flags.Parse(args)
	if *kind == "" || *metric == "" {
		usage("custom: --kind and --metric are required")
	}
	objectSelector, err := labels.Parse(*selector)
	if err != nil {
		usage(fmt.Sprintf("custom: --selector %q: %v", *selector, err))
	}
	metricLabels, err := labels.Parse(*metricSelector)
	if err != nil {
		usage(fmt.Sprintf("custom: --metric-selector %q: %v", *metricSelector, err))
	}
	// The HPA's own REST mapper: discovery-backed, so Kind → resource as the cluster says.
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discoveryClient))
	var apis customclient.AvailableAPIsGetter
	switch *version {
	case "preferred":
		apis = customclient.NewAvailableAPIsGetter(discoveryClient)
	case "v1beta1", "v1beta2":
		apis = fixedVersion{schema.GroupVersion{Group: customGroup, Version: *version}}
	default:
		usage("custom: --version must be v1beta1, v1beta2 or preferred, not " + *version)
	}
	chosen, err := apis.PreferredVersion()
	if err != nil {
		return nil, err
	}
	client := customclient.NewForConfig(config, mapper, apis)
	var metrics customclient.MetricsInterface
	if *namespace == "" {
		metrics = client.RootScopedMetrics()
	} else {
		metrics = client.NamespacedMetrics(*namespace)
	}
	groupKind := schema.ParseGroupKind(*kind)
	result := customResult{Version: chosen.String()}
	if *name != "" {
		value, err := metrics.GetForObject(groupKind, *name, *metric, metricLabels)
		if err != nil {
			return nil, err
		}
		result.Items = []custommetricsv1beta2.MetricValue{*value}
	} else {
		list, err := metrics.GetForObjects(groupKind, objectSelector, *metric, metricLabels)
		if err != nil {
			return nil, err
		}
		result.Items = list.Items
	}
	return result, nil
}

// fixedVersion pins the custom metrics version instead of asking discovery.
type fixedVersion struct{ version schema.GroupVersion }

func (f fixedVersion) PreferredVersion() (schema.GroupVersion, error) { return f.version, nil }
func (f fixedVersion) Invalidate()                                    {}

func runExternal(config *rest.Config, args []string) (any, error) {
	flags := flag.NewFlagSet("external", flag.ExitOnError)
	namespace := flags.String("namespace", "", "namespace (required)")
	metric := flags.String("metric", "", "metric name (required)")
	selector := flags.String("selector", "", "labelSelector over the metric's labels")
	flags.Parse(args)
	if *namespace == "" || *metric == "" {
		usage("external: --namespace and --metric are required")
	}
	metricLabels, err := labels.Parse(*selector)
	if err != nil {
		usage(fmt.Sprintf("external: --selector %q: %v", *selector, err))
	}
	client, err := externalclient.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return client.NamespacedMetrics(*namespace).List(*metric, metricLabels)
}

func emit(out output) {
	if out.Responses == nil {
		out.Responses = []response{}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "metrics-check:", err)
		os.Exit(1)
	}
}

func fail(rec *recorder, err error) {
	out := output{Error: err.Error(), Responses: rec.responses}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		out.Code = status.Status().Code
		out.Reason = string(status.Status().Reason)
	}
	emit(out)
	fmt.Fprintln(os.Stderr, "metrics-check:", err)
	os.Exit(1)
}

func usage(message string) {
	fmt.Fprintln(os.Stderr, "metrics-check:", message)
	os.Exit(2)
}
