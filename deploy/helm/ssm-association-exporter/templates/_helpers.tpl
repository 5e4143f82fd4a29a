{{/* Names, labels and the pod template, shared by the Deployment and the StatefulSet. */}}

{{- define "ssm-association-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's objects' name: the chart's name alone when the release is named after it. */}}
{{- define "ssm-association-exporter.fullname" -}}
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

{{- define "ssm-association-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ssm-association-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ssm-association-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ssm-association-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ssm-association-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ssm-association-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing service account when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ssm-association-exporter.webConfigSecret" -}}
{{- .Values.webConfig.existingSecret | default (printf "%s-web-config" (include "ssm-association-exporter.fullname" .)) }}
{{- end }}

{{/* HTTPS when the exporter serves TLS: said by webConfig.tls, or read from its inline config. */}}
{{- define "ssm-association-exporter.scheme" -}}
{{- if and .Values.webConfig.enabled (or .Values.webConfig.tls (hasKey .Values.webConfig.config "tls_server_config")) }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* The pod template of either workload; the StatefulSet's replicas take their shard from
their ordinal. Field by field what deploy/kubernetes/standalone/deployment.yaml says (and
deploy/check compares the two). */}}
{{- define "ssm-association-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "ssm-association-exporter.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: exporter
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- if and .Values.webConfig.enabled (not .Values.webConfig.existingSecret) }}
    checksum/web-config: {{ include (print $.Template.BasePath "/web-config-secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "ssm-association-exporter.serviceAccountName" . }}
  # The exporter never calls the Kubernetes API. IRSA and Pod Identity mount their own tokens.
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: ssm-association-exporter
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --config.file=/etc/ssm-association-exporter/config.yaml
        - --web.listen-address=:8467
        - --web.telemetry-path={{ .Values.telemetryPath }}
        - --log.level={{ .Values.logLevel }}
        {{- if ne .Values.logFormat "logfmt" }}
        - --log.format={{ .Values.logFormat }}
        {{- end }}
        {{- if .Values.webConfig.enabled }}
        - --web.config.file=/etc/ssm-association-exporter-web/web-config.yaml
        {{- end }}
        {{- with .Values.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if or .Values.sharding.enabled .Values.extraEnv }}
      env:
        {{- if .Values.sharding.enabled }}
        # The pod's ordinal (0..shards-1), from the label Kubernetes 1.28+ puts on every
        # StatefulSet pod.
        - name: SSM_EXPORTER_SHARD
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
        - name: SSM_EXPORTER_TOTAL_SHARDS
          value: {{ .Values.sharding.shards | quote }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: http-metrics
          containerPort: 8467
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /-/healthy
          port: http-metrics
          {{- if eq (include "ssm-association-exporter.scheme" .) "HTTPS" }}
          scheme: HTTPS
          {{- end }}
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /-/ready
          port: http-metrics
          {{- if eq (include "ssm-association-exporter.scheme" .) "HTTPS" }}
          scheme: HTTPS
          {{- end }}
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/ssm-association-exporter
          readOnly: true
        {{- if .Values.webConfig.enabled }}
        - name: web-config
          mountPath: /etc/ssm-association-exporter-web
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "ssm-association-exporter.fullname" . }}
    {{- if .Values.webConfig.enabled }}
    - name: web-config
      secret:
        secretName: {{ include "ssm-association-exporter.webConfigSecret" . }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
