{{/* The chart's name, or nameOverride. */}}
{{- define "browserd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: fullnameOverride, or the release name (with the chart's name
appended unless the release name already contains it), cut to the 63 characters DNS
labels allow.
*/}}
{{- define "browserd.fullname" -}}
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

{{/* chart label: name-version. */}}
{{- define "browserd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries (Helm's recommended set). */}}
{{- define "browserd.labels" -}}
helm.sh/chart: {{ include "browserd.chart" . }}
{{ include "browserd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: browserd
{{- end }}

{{/* The labels that select the pods: never change them in an upgrade (selectors are immutable). */}}
{{- define "browserd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "browserd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image reference: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "browserd.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the drain timeout plus a margin, so that the kubelet's
SIGKILL never cuts the drain short: browserd waits up to --drain-timeout for its sessions,
then ends the rest and flushes its blob spool within the margin.
*/}}
{{- define "browserd.terminationGracePeriodSeconds" -}}
{{- add (int .Values.browserd.drainTimeoutSeconds) (int .Values.browserd.terminationMarginSeconds) }}
{{- end }}

{{/*
Memory, MiB, from docs/PERFORMANCE.md's density measurements (PSS per idle session
116–126 MiB, server and warm pool about 250 MiB together):
  request = serverMiB + (maxSessions + poolSize) × sessionMiB
  limit   = serverMiB + (maxSessions + poolSize) × sessionLimitMiB
The warm pool's browsers count as sessions: each is a launched Chromium.
*/}}
{{- define "browserd.memoryRequestMiB" -}}
{{- $s := .Values.sizing }}
{{- add (int $s.serverMiB) (mul (add (int .Values.browserd.maxSessions) (int .Values.browserd.poolSize)) (int $s.sessionMiB)) }}
{{- end }}
{{- define "browserd.memoryLimitMiB" -}}
{{- $s := .Values.sizing }}
{{- add (int $s.serverMiB) (mul (add (int .Values.browserd.maxSessions) (int .Values.browserd.poolSize)) (int $s.sessionLimitMiB)) }}
{{- end }}

{{/*
The container's resources: .Values.resources when it sets any, else the computed memory
above and sizing.cpuRequest (no CPU limit: a throttled Chromium misses its deadlines).
*/}}
{{- define "browserd.resources" -}}
{{- if .Values.resources }}
{{- toYaml .Values.resources }}
{{- else }}
requests:
  cpu: {{ .Values.sizing.cpuRequest | quote }}
  memory: {{ printf "%sMi" (include "browserd.memoryRequestMiB" .) }}
limits:
  memory: {{ printf "%sMi" (include "browserd.memoryLimitMiB" .) }}
{{- end }}
{{- end }}

{{/* The sessions per pod KEDA aims for: keda.targetSessionsPerPod, else 3/4 of maxSessions. */}}
{{- define "browserd.kedaTarget" -}}
{{- if .Values.keda.targetSessionsPerPod }}
{{- .Values.keda.targetSessionsPerPod }}
{{- else }}
{{- max 1 (div (mul (int .Values.browserd.maxSessions) 3) 4) }}
{{- end }}
{{- end }}

{{/* The PromQL query of KEDA's trigger: keda.prometheus.query, else the live sessions of this release's pods. */}}
{{- define "browserd.kedaQuery" -}}
{{- if .Values.keda.prometheus.query }}
{{- tpl .Values.keda.prometheus.query . }}
{{- else }}
{{- printf "sum(browserd_node_sessions{namespace=%q, pod=~%q})" .Release.Namespace (printf "%s-.*" (include "browserd.fullname" .)) }}
{{- end }}
{{- end }}
