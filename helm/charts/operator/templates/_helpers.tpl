{{/* The release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "operator.labels" -}}
{{ include "operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: set it when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The Lease the replicas elect their leader with: the name the operator uses (crates/operator),
in the release's namespace.
*/}}
{{- define "operator.leaseName" -}}ebb-operator{{- end -}}

{{/*
The namespaces Secrets are read in, as a JSON list; empty means every namespace.
In single-namespace mode that namespace only: a QueueScaler reads Secrets of its own namespace.
*/}}
{{- define "operator.secretNamespaces" -}}
{{- $listed := .Values.secrets.namespaces | default list -}}
{{- if and .Values.secrets.clusterWide (or $listed .Values.watchNamespace) -}}
{{- fail "secrets.clusterWide: true grants the Secrets of every namespace; leave secrets.namespaces empty and watchNamespace unset with it" -}}
{{- end -}}
{{- if .Values.watchNamespace -}}
{{- if and $listed (ne (toJson $listed) (toJson (list .Values.watchNamespace))) -}}
{{- fail (printf "secrets.namespaces: with watchNamespace %q set, Secrets are read in %q only; leave secrets.namespaces empty" .Values.watchNamespace .Values.watchNamespace) -}}
{{- end -}}
{{- toJson (list .Values.watchNamespace) -}}
{{- else if $listed -}}
{{- toJson $listed -}}
{{- else if .Values.secrets.clusterWide -}}
{{- toJson list -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{/*
The rules for everything the controller touches in a QueueScaler's namespace, Secrets aside:
the same list in the ClusterRole (every namespace) and in the single-namespace Role.
*/}}
{{- define "operator.namespacedRules" -}}
# Watched: every QueueScaler, and the status written by server-side apply.
- apiGroups: ["ebb.dev"]
  resources: ["queuescalers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["ebb.dev"]
  resources: ["queuescalers/status"]
  verbs: ["patch"]
# Each target is followed with a watch; its count is read and written through /scale.
{{- range .Values.scaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: {{ toJson .resources }}
  verbs: ["get", "list", "watch"]
- apiGroups: [{{ .apiGroup | quote }}]
  resources:
    {{- range .resources }}
    - {{ printf "%s/scale" . | quote }}
    {{- end }}
  verbs: ["get", "patch"]
{{- end }}
# A scale-in lists the target's pods (once, when it comes) and marks the ones it chose with
# controller.kubernetes.io/pod-deletion-cost, so that the ReplicaSet removes idle pods rather
# than busy ones (docs/scale-in.md). Only list and patch: never get, watch or delete.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
# An HPA on the same workload is reported as a Conflict, never fought.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch"]
# An Event on every scale (kube-runtime's recorder: events.k8s.io/v1, patched for series).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{- define "operator.secretRules" -}}
# Redis URL, password and CA referenced by a QueueScaler; read only, and watched.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end -}}
