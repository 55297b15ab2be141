{{/*
Shared names and computed values. Object names are the release name (the tutorial's convention: the
Service DNS name clients use is the release name); `app: <release>` is the selector label.
*/}}

{{- define "llmserve.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object: the tutorial's `app`, Helm's recommended ones, then kubernetes.labels. */}}
{{- define "llmserve.labels" -}}
app: {{ include "llmserve.name" . }}
app.kubernetes.io/name: llmserve
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.kubernetes.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* GPUs per pod: tensor × pipeline parallelism (0 on --device cpu). */}}
{{- define "llmserve.gpus" -}}
{{- if eq .Values.server.device "cpu" -}}0{{- else -}}
{{- mul .Values.model.parallelism.tensor .Values.model.parallelism.pipeline -}}
{{- end -}}
{{- end -}}

{{/* CPU cores: server.resources.cpu, else max(4, tp × pp) as in the tutorial. */}}
{{- define "llmserve.cpu" -}}
{{- $r := .Values.server.resources | default dict -}}
{{- if and $r.cpu (ne (toString $r.cpu) "0") -}}{{ $r.cpu }}{{- else -}}
{{- max 4 (mul .Values.model.parallelism.tensor .Values.model.parallelism.pipeline) -}}
{{- end -}}
{{- end -}}

{{/* Memory: server.resources.memory, else 8Gi per whole CPU core (the tutorial's rule; 32Gi at 4 cores). */}}
{{- define "llmserve.memory" -}}
{{- $r := .Values.server.resources | default dict -}}
{{- if $r.memory -}}{{ $r.memory }}{{- else -}}
{{- $cpu := include "llmserve.cpu" . -}}
{{- $cores := 1 -}}
{{- if hasSuffix "m" $cpu -}}{{- $cores = max 1 (div (trimSuffix "m" $cpu | atoi) 1000) -}}{{- else -}}{{- $cores = atoi $cpu -}}{{- end -}}
{{- printf "%dGi" (mul $cores 8) -}}
{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: set, or preStop + drain + 10; always more than preStop + drain. */}}
{{- define "llmserve.gracePeriod" -}}
{{- $s := .Values.server -}}
{{- $floor := add $s.preStopSleepSeconds $s.drainTimeoutSeconds -}}
{{- if $s.terminationGracePeriodSeconds -}}
{{- if le (int $s.terminationGracePeriodSeconds) (int $floor) -}}
{{- fail (printf "server.terminationGracePeriodSeconds (%d) must exceed server.preStopSleepSeconds + server.drainTimeoutSeconds (%d), or the kubelet kills in-flight requests" (int $s.terminationGracePeriodSeconds) (int $floor)) -}}
{{- end -}}
{{- $s.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $floor 10 -}}
{{- end -}}
{{- end -}}

{{/* Node cache sub-path of this model and parallelism: models/<name>/<tp>x<pp>. */}}
{{- define "llmserve.cacheSubPath" -}}
{{- printf "models/%s/%dx%d" (lower .Values.model.name) (int .Values.model.parallelism.tensor) (int .Values.model.parallelism.pipeline) -}}
{{- end -}}

{{/* "true" when the init container builds an engine (model.repo set and model.engine.build not false). */}}
{{- define "llmserve.buildEngine" -}}
{{- $engine := .Values.model.engine | default dict -}}
{{- if and .Values.model.repo (or (not (hasKey $engine "build")) $engine.build) -}}true{{- end -}}
{{- end -}}
