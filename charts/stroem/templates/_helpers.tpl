{{/* The chart's name, shortened to a DNS label. */}}
{{- define "stroem.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name for every object. */}}
{{- define "stroem.fullname" -}}
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

{{- define "stroem.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stroem.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (server, worker): pass (dict "root" $ "component" "server"). */}}
{{- define "stroem.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stroem.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "stroem.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the database URL, worker token and auth secrets. */}}
{{- define "stroem.secretName" -}}
{{- default (include "stroem.fullname" .) .Values.existingSecret.name }}
{{- end }}

{{/* "true" when the server uses PostgreSQL rather than SQLite. */}}
{{- define "stroem.externalDatabase" -}}
{{- if or .Values.database.url (and .Values.existingSecret.name .Values.existingSecret.databaseUrlKey) }}true{{ end }}
{{- end }}

{{/* Key names inside the Secret. */}}
{{- define "stroem.key.databaseUrl" -}}
{{- if .Values.existingSecret.name }}{{ .Values.existingSecret.databaseUrlKey }}{{ else }}database-url{{ end }}
{{- end }}
{{- define "stroem.key.workerToken" -}}
{{- if .Values.existingSecret.name }}{{ .Values.existingSecret.workerTokenKey }}{{ else }}worker-token{{ end }}
{{- end }}
{{- define "stroem.key.jwtSecret" -}}
{{- if .Values.existingSecret.name }}{{ .Values.existingSecret.jwtSecretKey }}{{ else }}jwt-secret{{ end }}
{{- end }}
{{- define "stroem.key.refreshSecret" -}}
{{- if .Values.existingSecret.name }}{{ .Values.existingSecret.refreshSecretKey }}{{ else }}refresh-secret{{ end }}
{{- end }}
{{- define "stroem.key.initialUserPassword" -}}
{{- if .Values.existingSecret.name }}{{ .Values.existingSecret.initialUserPasswordKey }}{{ else }}initial-user-password{{ end }}
{{- end }}

{{/* Where the Secret's keys are mounted in every Strøm container. */}}
{{- define "stroem.secretDir" -}}/etc/stroem/secrets{{- end }}

{{/* The ServiceAccount of the worker pods. */}}
{{- define "stroem.workerServiceAccountName" -}}
{{- if or .Values.worker.serviceAccount.create .Values.worker.kubernetes.enabled }}
{{- default (printf "%s-worker" (include "stroem.fullname" .)) .Values.worker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The in-cluster URL of the server. */}}
{{- define "stroem.serverUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "stroem.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/* Where the Docker-in-Docker sidecar's socket is shared with the worker. */}}
{{- define "stroem.dindSocketDir" -}}/var/run/dind{{- end }}

{{/* The checks the values must pass beyond values.schema.json. */}}
{{- define "stroem.validate" -}}
{{- if and (gt (int .Values.server.replicas) 1) (not (include "stroem.externalDatabase" .)) }}
{{- fail "server.replicas > 1 needs PostgreSQL: set database.url (or existingSecret.databaseUrlKey); SQLite allows one server" }}
{{- end }}
{{- if and (gt (int .Values.server.replicas) 1) .Values.server.persistence.enabled (not (has "ReadWriteMany" .Values.server.persistence.accessModes)) }}
{{- fail "server.replicas > 1 share the data volume (job logs): set server.persistence.accessModes to [ReadWriteMany], or server.persistence.enabled=false" }}
{{- end }}
{{- if and .Values.server.workspace.configMap .Values.server.workspace.existingClaim }}
{{- fail "server.workspace: set configMap or existingClaim, not both" }}
{{- end }}
{{- if and .Values.existingSecret.name .Values.database.url }}
{{- fail "database.url is ignored with existingSecret.name: put the URL in that Secret and name its key in existingSecret.databaseUrlKey" }}
{{- end }}
{{- if and .Values.auth.enabled .Values.auth.providers (not .Values.auth.baseUrl) }}
{{- fail "auth.providers (OIDC) need auth.baseUrl, the server's public URL" }}
{{- end }}
{{- end }}
