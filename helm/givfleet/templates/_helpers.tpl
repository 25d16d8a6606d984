{{/* Names, labels and the pieces every givfleet pod shares. */}}

{{- define "givfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "givfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "givfleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "givfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "api"). */}}
{{- define "givfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "givfleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "givfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "givfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "givfleet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "givfleet.simulatorName" -}}
{{- printf "%s-simulator" (include "givfleet.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret holding database-url, redis-url and encryption-keys; rendering fails when none is complete. */}}
{{- define "givfleet.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- if not (and .Values.secrets.databaseUrl .Values.secrets.redisUrl .Values.secrets.encryptionKeys) -}}
{{- fail "givfleet: set secrets.existingSecret (keys database-url, redis-url, encryption-keys), or all of secrets.databaseUrl, secrets.redisUrl and secrets.encryptionKeys: the pods never generate an encryption key" -}}
{{- end -}}
{{- include "givfleet.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Settings every process reads (the ConfigMap's data), as YAML: the chart's fixed ones win over config. */}}
{{- define "givfleet.settings" -}}
{{- $settings := deepCopy .Values.config -}}
{{- if .Values.simulator.enabled -}}
{{- $base := printf "http://%s:%d" (include "givfleet.simulatorName" .) (int .Values.simulator.port) -}}
{{- $_ := set $settings "GIVFLEET_GIVENERGY__BASE_URL" (printf "%s/v1" $base) -}}
{{- $_ := set $settings "GIVFLEET_GIVENERGY__LEGACY_BASE_URL" (printf "%s/GivManage/api" $base) -}}
{{- end -}}
{{- $_ := set $settings "GIVFLEET_HOME" "/var/lib/givfleet" -}}
{{- $_ := set $settings "GIVFLEET_SECURITY__GENERATE_KEY_FILE" "false" -}}
{{- $_ := set $settings "GIVFLEET_API__HOST" "0.0.0.0" -}}
{{- $_ := set $settings "GIVFLEET_API__PORT" "8000" -}}
{{- if not (hasKey $settings "GIVFLEET_LOG__JSON_OUTPUT") -}}
{{- $_ := set $settings "GIVFLEET_LOG__JSON_OUTPUT" "true" -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end -}}

{{/* The secret settings, from the Secret. */}}
{{- define "givfleet.secretEnv" -}}
- name: GIVFLEET_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "givfleet.secretName" . }}
      key: database-url
- name: GIVFLEET_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "givfleet.secretName" . }}
      key: redis-url
- name: GIVFLEET_SECURITY__ENCRYPTION_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "givfleet.secretName" . }}
      key: encryption-keys
{{- end -}}

{{/* Pod annotations: roll the pods when the settings or the chart-made Secret change. */}}
{{- define "givfleet.podAnnotations" -}}
checksum/config: {{ include "givfleet.settings" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include "givfleet.secretData" . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "givfleet.secretData" -}}
database-url: {{ .Values.secrets.databaseUrl | b64enc | quote }}
redis-url: {{ .Values.secrets.redisUrl | b64enc | quote }}
encryption-keys: {{ .Values.secrets.encryptionKeys | toJson | b64enc | quote }}
{{- end -}}

{{/* The writable paths of a read-only root: GIVFLEET_HOME and /tmp. */}}
{{- define "givfleet.volumeMounts" -}}
- name: home
  mountPath: /var/lib/givfleet
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "givfleet.volumes" -}}
- name: home
  emptyDir:
    sizeLimit: 64Mi
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/* Pod-level scheduling and security shared by every Deployment: call with (dict "root" $ "component" "api"). */}}
{{- define "givfleet.podCommon" -}}
serviceAccountName: {{ include "givfleet.serviceAccountName" .root }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .root.Values.topologySpread.maxSkew }}
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ .root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "givfleet.selectorLabels" . | nindent 8 }}
  - maxSkew: {{ .root.Values.topologySpread.maxSkew }}
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ .root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "givfleet.selectorLabels" . | nindent 8 }}
{{- end }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "givfleet.volumes" .root | nindent 2 }}
{{- end -}}

{{/* Every queue is served by at least one enabled worker group. */}}
{{- define "givfleet.checkQueues" -}}
{{- $served := list -}}
{{- range $name, $group := .Values.workers -}}
{{- if $group.enabled -}}
{{- $served = concat $served $group.queues -}}
{{- end -}}
{{- end -}}
{{- range $queue := list "control" "monitor" "bulk" "notify" -}}
{{- if not (has $queue $served) -}}
{{- fail (printf "givfleet: no enabled worker group serves the %s queue (workers.*.queues)" $queue) -}}
{{- end -}}
{{- end -}}
{{- end -}}
