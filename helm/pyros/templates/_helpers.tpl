{{/*
Names and labels.
*/}}
{{- define "pyros.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pyros.fullname" -}}
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

{{- define "pyros.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pyros.labels" -}}
helm.sh/chart: {{ include "pyros.chart" . }}
{{ include "pyros.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pyros
{{- end }}

{{- define "pyros.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pyros.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component; call with (dict "root" $ "component" "alerts"). */}}
{{- define "pyros.componentLabels" -}}
{{ include "pyros.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pyros.componentSelectorLabels" -}}
{{ include "pyros.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pyros.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Secrets. The application Secret is ours unless secrets.existingSecret names one.
*/}}
{{- define "pyros.secretName" -}}
{{- default (include "pyros.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* An existing value of key .key in Secret .name, or "" (lookup is empty under helm template). */}}
{{- define "pyros.lookupSecretValue" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $secret $secret.data (hasKey $secret.data .key) }}
{{- index $secret.data .key | b64dec }}
{{- end }}
{{- end }}

{{/*
JWT secret for our own Secret: the value given, else the one kept from a previous release,
else (development only) a new random one. Production needs it given explicitly.
*/}}
{{- define "pyros.jwtSecret" -}}
{{- if .Values.secrets.jwtSecret }}
{{- .Values.secrets.jwtSecret }}
{{- else if eq .Values.config.env "production" }}
{{- fail "secrets.jwtSecret (or secrets.existingSecret with key jwt-secret) is required when config.env=production: PyROS refuses a default JWT secret in production. Set it with --set-file secrets.jwtSecret=<file> or create a Secret and set secrets.existingSecret." }}
{{- else }}
{{- $kept := include "pyros.lookupSecretValue" (dict "root" . "name" (include "pyros.fullname" .) "key" "jwt-secret") }}
{{- default (randAlphaNum 48) $kept }}
{{- end }}
{{- end }}

{{- define "pyros.postgresql.secretName" -}}
{{- if .Values.postgresql.auth.existingSecret }}
{{- .Values.postgresql.auth.existingSecret }}
{{- else }}
{{- printf "%s-postgresql" (include "pyros.fullname" .) }}
{{- end }}
{{- end }}

{{- define "pyros.postgresql.password" -}}
{{- if .Values.postgresql.auth.password }}
{{- .Values.postgresql.auth.password }}
{{- else }}
{{- $kept := include "pyros.lookupSecretValue" (dict "root" . "name" (include "pyros.postgresql.secretName" .) "key" .Values.postgresql.auth.secretKey) }}
{{- default (randAlphaNum 32) $kept }}
{{- end }}
{{- end }}

{{- define "pyros.postgresql.host" -}}
{{- printf "%s-postgresql" (include "pyros.fullname" .) }}
{{- end }}

{{- define "pyros.kafka.host" -}}
{{- printf "%s-kafka" (include "pyros.fullname" .) }}
{{- end }}

{{- define "pyros.kafka.bootstrap" -}}
{{- if .Values.kafka.enabled }}
{{- printf "%s:9092" (include "pyros.kafka.host" .) }}
{{- else if .Values.externalKafka.bootstrap }}
{{- .Values.externalKafka.bootstrap }}
{{- else }}
{{- fail "externalKafka.bootstrap is required when kafka.enabled=false" }}
{{- end }}
{{- end }}

{{/* Secret and key holding PYROS_DATABASE_URL for an external database. */}}
{{- define "pyros.externalDatabase.secretName" -}}
{{- if .Values.externalDatabase.existingSecret }}
{{- .Values.externalDatabase.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "pyros.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Environment of the database URL. With the bundled PostgreSQL the password comes from its
Secret and Kubernetes expands $(PYROS_DATABASE_PASSWORD) into the URL.
*/}}
{{- define "pyros.databaseEnv" -}}
{{- if .Values.postgresql.enabled }}
- name: PYROS_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pyros.postgresql.secretName" . }}
      key: {{ .Values.postgresql.auth.secretKey }}
- name: PYROS_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s:$(PYROS_DATABASE_PASSWORD)@%s:5432/%s" .Values.postgresql.auth.username (include "pyros.postgresql.host" .) .Values.postgresql.auth.database | quote }}
{{- else if or .Values.externalDatabase.url .Values.externalDatabase.existingSecret }}
- name: PYROS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "pyros.externalDatabase.secretName" . }}
      key: {{ .Values.externalDatabase.existingSecretKey }}
{{- else }}
{{- fail "externalDatabase.url or externalDatabase.existingSecret is required when postgresql.enabled=false" }}
{{- end }}
{{- end }}

{{/* Non-secret settings shared by every service (the ConfigMap, and inline in the hook Job). */}}
{{- define "pyros.commonConfig" -}}
PYROS_ENV: {{ .Values.config.env | quote }}
PYROS_TELESCOPE_ID: {{ .Values.config.telescopeId | quote }}
PYROS_SITE: {{ .Values.config.site | quote }}
PYROS_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
PYROS_KAFKA_BOOTSTRAP: {{ include "pyros.kafka.bootstrap" . | quote }}
PYROS_TOPIC_PARTITIONS: {{ .Values.config.topicPartitions | quote }}
PYROS_TOPIC_REPLICATION: {{ .Values.config.topicReplication | quote }}
PYROS_DATA_DIR: {{ .Values.persistence.mountPath | quote }}
{{- range $k, $v := .Values.config.extraEnv }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{- define "pyros.dataClaimName" -}}
{{- default (printf "%s-data" (include "pyros.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Checksum of the configuration so that pods roll when it changes. */}}
{{- define "pyros.configChecksum" -}}
{{- include "pyros.commonConfig" . | sha256sum }}
{{- end }}
