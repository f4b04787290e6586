{{/* The release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "metrics-api.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "metrics-api.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "metrics-api.labels" -}}
{{ include "metrics-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "metrics-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "metrics-api.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: set it when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the serving certificate (tls.crt, tls.key). */}}
{{- define "metrics-api.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secretName: set it when tls.mode is secret" .Values.tls.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "metrics-api.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
The generated CA and serving certificate, made once per render and shared by the Secret and
the APIServices' caBundle: {"ca": PEM, "cert": PEM, "key": PEM}. An installed release's Secret
is read back (lookup), so upgrades keep the certificate and the caBundle in step.
*/}}
{{- define "metrics-api.generatedTLS" -}}
{{- $secretName := include "metrics-api.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- if and $existing (index $existing.data "ca.crt") -}}
{{- dict "ca" (index $existing.data "ca.crt" | b64dec) "cert" (index $existing.data "tls.crt" | b64dec) "key" (index $existing.data "tls.key" | b64dec) | toJson -}}
{{- else -}}
{{- $service := include "metrics-api.fullname" . -}}
{{- $names := list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace) -}}
{{- $ca := genCA (printf "%s-ca" $service) (int .Values.tls.generatedDays) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $service .Release.Namespace) nil $names (int .Values.tls.generatedDays) $ca -}}
{{- dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key | toJson -}}
{{- end -}}
{{- end -}}

{{/* The APIServices to render: name, group, version and their values. */}}
{{- define "metrics-api.apiServices" -}}
{{- $all := list -}}
{{- $all = append $all (dict "key" "customV1beta1" "group" "custom.metrics.k8s.io" "version" "v1beta1") -}}
{{- $all = append $all (dict "key" "customV1beta2" "group" "custom.metrics.k8s.io" "version" "v1beta2") -}}
{{- $all = append $all (dict "key" "externalV1beta1" "group" "external.metrics.k8s.io" "version" "v1beta1") -}}
{{- toJson $all -}}
{{- end -}}

{{/*
The Service's ports (HTTPS, which the APIServices name, and metrics): on the host network no
proxy maps them, so they are the pod's own.
*/}}
{{- define "metrics-api.serviceHTTPSPort" -}}
{{- ternary .Values.securePort .Values.service.port .Values.hostNetwork.enabled -}}
{{- end -}}

{{- define "metrics-api.serviceMetricsPort" -}}
{{- ternary .Values.metricsPort .Values.service.metricsPort .Values.hostNetwork.enabled -}}
{{- end -}}

{{/* hostNetwork mode: the ClusterIP the pod listens on (one replica owns it). */}}
{{- define "metrics-api.hostNetworkAddress" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail "replicaCount: set it to 1 with hostNetwork.enabled (one pod listens on the Service's ClusterIP)" -}}
{{- end -}}
{{- required "service.clusterIP: set it with hostNetwork.enabled (the pod listens on that address)" .Values.service.clusterIP -}}
{{- end -}}

{{/* Where the HTTPS probes dial: the named port, or on the host network the ClusterIP's. */}}
{{- define "metrics-api.probeTarget" -}}
{{- if .Values.hostNetwork.enabled -}}
host: {{ include "metrics-api.hostNetworkAddress" . }}
port: {{ .Values.securePort }}
{{- else -}}
port: https
{{- end -}}
{{- end -}}
