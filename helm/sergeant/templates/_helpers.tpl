{{/* Names, labels and small shared pieces. Every helper is prefixed with the chart name. */}}

{{- define "sergeant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<chart>", or the release name alone when it already holds the chart name. */}}
{{- define "sergeant.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the operator's Deployment, Service, (Cluster)Role and their bindings. */}}
{{- define "sergeant.operatorName" -}}
{{- printf "%s-operator" (include "sergeant.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sergeant.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "sergeant.labels" -}}
helm.sh/chart: {{ include "sergeant.chart" . }}
app.kubernetes.io/name: {{ include "sergeant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sergeant
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The operator's pods: fixed for a release's lifetime, since a Deployment's selector cannot change. */}}
{{- define "sergeant.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sergeant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "sergeant.operatorLabels" -}}
{{ include "sergeant.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "sergeant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sergeant.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sergeant.leaseName" -}}
{{- default (include "sergeant.operatorName" .) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{/* The operator image: repository@digest, or repository:tag (the chart's appVersion by default). */}}
{{- define "sergeant.operatorImage" -}}
{{- $image := .Values.operator.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* The namespace whose worker pods are deployed by default: the watched one, or the release's. */}}
{{- define "sergeant.workerNamespace" -}}
{{- default .Release.Namespace .Values.operator.watchNamespace }}
{{- end }}

{{/* Selector of the worker pods the operator deploys (labels set by operator/sergeant_operator/deployment.py). */}}
{{- define "sergeant.workerPodSelectorLabels" -}}
app.kubernetes.io/name: sergeant-worker
app.kubernetes.io/managed-by: sergeant-operator
{{- end }}

