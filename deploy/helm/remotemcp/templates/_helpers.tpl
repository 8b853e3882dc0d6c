{{/* Names and labels. */}}
{{- define "remotemcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "remotemcp.fullname" -}}
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

{{- define "remotemcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "remotemcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "remotemcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "remotemcp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "remotemcp.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{/* More than one pod at any time: a fixed count above one, or an autoscaler. */}}
{{- define "remotemcp.multi" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
The rules the binary would otherwise only report at start, one pod at a
time, in a crash loop: refused here, at install.
*/}}
{{- define "remotemcp.validate" -}}
{{- $v := .Values }}
{{- $s := $v.secrets }}
{{- if not (has $v.server.auth (list "jwt" "introspect" "proxy")) }}
{{- fail (printf "server.auth must be jwt, introspect or proxy (none serves loopback only), not %q" $v.server.auth) }}
{{- end }}
{{- if not $v.server.publicURL }}
{{- fail "server.publicURL is required: the URL clients use (--public-url)" }}
{{- end }}
{{- if and (has $v.server.auth (list "jwt" "introspect")) (not $v.server.issuer) }}
{{- fail (printf "server.issuer is required with server.auth=%s (--issuer)" $v.server.auth) }}
{{- end }}
{{- if and (eq $v.server.auth "introspect") (not $v.server.introspectionURL) }}
{{- fail "server.introspectionURL is required with server.auth=introspect" }}
{{- end }}
{{- if and (eq $v.server.auth "proxy") (not (or $v.server.upstream $v.server.upstreamIssuer)) }}
{{- fail "server.auth=proxy needs server.upstream (oidc, github, google) or server.upstreamIssuer: the built-in dev upstream serves loopback only" }}
{{- end }}
{{- if eq $v.server.upstream "dev" }}
{{- fail "server.upstream=dev serves loopback only: use oidc, github or google" }}
{{- end }}
{{- if and (include "remotemcp.multi" .) (not $s.redis.secretName) }}
{{- fail "several replicas (replicaCount > 1 or autoscaling.enabled) share their state through Redis: set secrets.redis.secretName to a Secret holding the Redis URL" }}
{{- end }}
{{- if $s.redis.secretName }}
{{- if not (and $s.keys.secretName $s.keys.state) }}
{{- fail "with Redis every replica must share the requestState key: set secrets.keys.secretName (and secrets.keys.state) to a Secret holding it" }}
{{- end }}
{{- end }}
{{- if and (eq $v.server.auth "proxy") (or (include "remotemcp.multi" .) $s.redis.secretName) }}
{{- if not (and $s.keys.secretName $s.keys.signing $s.keys.vault $s.keys.cookie) }}
{{- fail "server.auth=proxy with several replicas or Redis needs the shared keys: set secrets.keys.secretName to a Secret holding the signing key ring, the vault keys and the cookie key (secrets.keys.signing, .vault, .cookie)" }}
{{- end }}
{{- end }}
{{- if $s.keys.secretName }}
{{- if not (or $s.keys.state (and (eq $v.server.auth "proxy") (or $s.keys.signing $s.keys.vault $s.keys.cookie))) }}
{{- fail "secrets.keys.secretName is set but names no key this auth mode uses (secrets.keys.state; with proxy also .signing, .vault, .cookie)" }}
{{- end }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- if and $v.metrics.enabled (eq (int $v.metrics.port) (int $v.server.port)) }}
{{- fail "metrics.port must differ from server.port: metrics have their own listener" }}
{{- end }}
{{- if and $v.autoscaling.enabled (lt (int $v.autoscaling.minReplicas) 1) }}
{{- fail "autoscaling.minReplicas must be at least 1" }}
{{- end }}
{{- end }}

{{- define "remotemcp.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (int .Values.preStopSleepSeconds) (int .Values.server.shutdownTimeoutSeconds) 10 }}
{{- else }}
{{- $g := int .Values.terminationGracePeriodSeconds }}
{{- if le $g (add (int .Values.preStopSleepSeconds) (int .Values.server.shutdownTimeoutSeconds)) }}
{{- fail "terminationGracePeriodSeconds must exceed preStopSleepSeconds + server.shutdownTimeoutSeconds, or the kubelet kills pods mid-drain" }}
{{- end }}
{{- $g }}
{{- end }}
{{- end }}
