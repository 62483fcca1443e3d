{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "resource-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: "<release>-<chart>", or the release name when it contains the chart name. */}}
{{- define "resource-agent.fullname" -}}
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

{{- define "resource-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard label set. */}}
{{- define "resource-agent.labels" -}}
helm.sh/chart: {{ include "resource-agent.chart" . }}
{{ include "resource-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: resource-agent
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "resource-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "resource-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: include "resource-agent.componentLabels" (list $ "agent") */}}
{{- define "resource-agent.componentLabels" -}}
{{ include "resource-agent.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "resource-agent.componentSelectorLabels" -}}
{{ include "resource-agent.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "resource-agent.agent.fullname" -}}
{{- printf "%s-agent" (include "resource-agent.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "resource-agent.operator.fullname" -}}
{{- printf "%s-operator" (include "resource-agent.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "resource-agent.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "resource-agent.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "resource-agent.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "resource-agent.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "repository@digest" when a digest is set, else "repository:tag", the tag defaulting to the chart's appVersion: include "resource-agent.image" (list $ .Values.agent.image) */}}
{{- define "resource-agent.image" -}}
{{- $image := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default (index . 0).Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "resource-agent.peeringName" -}}
{{- default .Release.Name .Values.operator.peering.name }}
{{- end }}

{{/*
"true" when the operator labels nodes with only nvidia.com/gpu capacity
(operator.labelGpuCapacityNodes): only with the chart's own GPU node affinity,
which then gets a term for the label; empty otherwise.
*/}}
{{- define "resource-agent.labelGpuCapacityNodes" -}}
{{- $agent := .Values.agent }}
{{- if and .Values.operator.enabled .Values.operator.labelGpuCapacityNodes $agent.enabled $agent.gpuNodeAffinity.enabled (not $agent.affinity) }}true{{- end }}
{{- end }}

{{- define "resource-agent.gpuCapacityLabel" -}}
resource.optiinfra.io/gpu-capacity
{{- end }}
