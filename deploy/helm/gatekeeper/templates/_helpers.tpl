{{/* Names, labels and the pieces every Gatekeeper pod shares. */}}

{{- define "gatekeeper.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatekeeper.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "gatekeeper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "gatekeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one process; call with (dict "root" $ "component" "web"). */}}
{{- define "gatekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatekeeper.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "gatekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatekeeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatekeeper.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "gatekeeper.configMapName" -}}
{{- default (printf "%s-config" (include "gatekeeper.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{/* One env entry read from the existing Secret; skipped when its key is left empty. */}}
{{- define "gatekeeper.secretEnv" -}}
{{- if .key }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/* The settings every process reads (README: Settings); secrets only by reference. */}}
{{- define "gatekeeper.env" -}}
{{- $secret := required "secrets.existingSecret: name the Secret holding Gatekeeper's tokens" .Values.secrets.existingSecret }}
{{- $keys := .Values.secrets.keys }}
{{- include "gatekeeper.secretEnv" (dict "name" "DATABASE_URL" "secret" $secret "key" (required "secrets.keys.databaseUrl: the Secret's key holding DATABASE_URL" $keys.databaseUrl)) }}
{{- include "gatekeeper.secretEnv" (dict "name" "SLACK_BOT_TOKEN" "secret" $secret "key" (required "secrets.keys.slackBotToken: the Secret's key holding the bot token" $keys.slackBotToken)) }}
{{- include "gatekeeper.secretEnv" (dict "name" "SLACK_SIGNING_SECRET" "secret" $secret "key" (required "secrets.keys.slackSigningSecret: the Secret's key holding the signing secret" $keys.slackSigningSecret)) }}
{{- include "gatekeeper.secretEnv" (dict "name" "SLACK_APP_TOKEN" "secret" $secret "key" $keys.slackAppToken) }}
{{- include "gatekeeper.secretEnv" (dict "name" "MLFLOW_WEBHOOK_SECRET" "secret" $secret "key" $keys.mlflowWebhookSecret) }}
{{- include "gatekeeper.secretEnv" (dict "name" "GATEKEEPER_REGISTRY_AUTH" "secret" $secret "key" $keys.registryAuth) }}
- name: GATEKEEPER_CONFIG
  value: /etc/gatekeeper/gatekeeper.yaml
- name: PORT
  value: {{ .Values.web.port | quote }}
{{- with .Values.slackApiUrl }}
- name: SLACK_API_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes of a process that reads gatekeeper.yaml and writes only to /tmp. */}}
{{- define "gatekeeper.volumes" -}}
- name: config
  configMap:
    name: {{ include "gatekeeper.configMapName" . }}
- name: tmp
  emptyDir: {}
{{- end }}

{{- define "gatekeeper.volumeMounts" -}}
- name: config
  mountPath: /etc/gatekeeper
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}
