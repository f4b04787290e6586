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

{{/* `autoscaler`, checked: hpa, metricsApi or queueScaler. */}}
{{- define "consumer.autoscaler" -}}
{{- $autoscaler := .Values.autoscaler | default "hpa" -}}
{{- if not (has $autoscaler (list "hpa" "metricsApi" "queueScaler")) -}}
{{- fail (printf "autoscaler: %q is not one of hpa, metricsApi, queueScaler" $autoscaler) -}}
{{- end -}}
{{- $autoscaler -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: as given, or the work of one item (perMsg: ms, s, m or h)
rounded up, plus 5 s to acknowledge it and exit. */}}
{{- define "consumer.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- $perMsg := toString .Values.perMsg -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- $seconds := -1.0 -}}
{{- range $unit := list "ms" "s" "m" "h" -}}
{{- if and (lt $seconds 0.0) (regexMatch (printf "^[0-9]+(\\.[0-9]+)?%s$" $unit) $perMsg) -}}
{{- $seconds = mulf (trimSuffix $unit $perMsg | float64) (get $units $unit) -}}
{{- end -}}
{{- end -}}
{{- if eq $perMsg "0" -}}{{- $seconds = 0.0 -}}{{- end -}}
{{- if lt $seconds 0.0 -}}
{{- fail (printf "perMsg: %q is not a duration like 1s, 500ms or 2m (set terminationGracePeriodSeconds to choose the grace period yourself)" $perMsg) -}}
{{- end -}}
{{- add (ceil $seconds | int) 5 -}}
{{- end -}}
{{- end -}}
