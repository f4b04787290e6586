{{/* The release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "consumer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "consumer.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "consumer.labels" -}}
{{ include "consumer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* `autoscaler`, checked: hpa or queueScaler. */}}
{{- define "consumer.autoscaler" -}}
{{- $autoscaler := .Values.autoscaler | default "hpa" -}}
{{- if not (has $autoscaler (list "hpa" "queueScaler")) -}}
{{- fail (printf "autoscaler: %q is neither hpa nor queueScaler" $autoscaler) -}}
{{- end -}}
{{- $autoscaler -}}
{{- end -}}
