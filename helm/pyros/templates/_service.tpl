{{/*
The template set of one PyROS service: Deployment, Service and (behind serviceMonitor.enabled)
ServiceMonitor. Call with (dict "root" $ "key" "deviceGateway" "name" "device-gateway");
each templates/services/<name>.yaml does exactly that, plus what is its own.
*/}}
{{- define "pyros.service" -}}
{{- $root := .root }}
{{- $svc := index $root.Values.services .key }}
{{- $name := .name }}
{{- $fullname := printf "%s-%s" (include "pyros.fullname" $root) $name | trunc 63 | trimSuffix "-" }}
{{- $ctx := dict "root" $root "component" $name }}
{{- $usesData := has $name (list "observer" "analyzer") }}
{{- if $svc.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "pyros.componentLabels" $ctx | nindent 4 }}
spec:
  replicas: {{ $svc.replicas }}
  {{- if or $usesData (has $name (list "observer" "majordome" "device-gateway")) }}
  # A single writer (telescope, data volume): never two pods at once.
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "pyros.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "pyros.componentSelectorLabels" $ctx | nindent 8 }}
      annotations:
        checksum/config: {{ include "pyros.configChecksum" $root }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $svc.port | quote }}
        prometheus.io/path: /metrics
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      # No <SVC>_PORT=tcp://... variables: they collide with PYROS_* and KAFKA_* settings.
      enableServiceLinks: false
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $name }}
          image: {{ include "pyros.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["run", {{ $name | quote }}]
          ports:
            - name: http
              containerPort: {{ $svc.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "pyros.fullname" $root }}
          env:
            - name: PYROS_HTTP_PORT
              value: {{ $svc.port | quote }}
            - name: PYROS_JWT_SECRET
              valueFrom:
                secretKeyRef:
                  name: {{ include "pyros.secretName" $root }}
                  key: jwt-secret
            {{- include "pyros.databaseEnv" $root | nindent 12 }}
            {{- if eq $name "alerts" }}
            - name: PYROS_GCN_CLIENT_ID
              valueFrom:
                secretKeyRef:
                  name: {{ include "pyros.secretName" $root }}
                  key: gcn-client-id
                  optional: true
            - name: PYROS_GCN_CLIENT_SECRET
              valueFrom:
                secretKeyRef:
                  name: {{ include "pyros.secretName" $root }}
                  key: gcn-client-secret
                  optional: true
            {{- /* Unset, not "", when empty: an unset host is what disables the intake. */}}
            {{- with $svc.vtp.host }}
            - name: PYROS_VTP_HOST
              value: {{ . | quote }}
            {{- end }}
            - name: PYROS_VTP_PORT
              value: {{ $svc.vtp.port | quote }}
            {{- end }}
            {{- if eq $name "device-gateway" }}
            {{- /* Unset when empty: the device gateway then runs the simulators. */}}
            {{- with $svc.indi.host }}
            - name: PYROS_INDI_HOST
              value: {{ . | quote }}
            {{- end }}
            - name: PYROS_INDI_PORT
              value: {{ $svc.indi.port | quote }}
            {{- end }}
            {{- range $k, $v := $svc.env }}
            - name: {{ $k }}
              value: {{ $v | toString | quote }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          {{- with $svc.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $usesData }}
            - name: data
              mountPath: {{ $root.Values.persistence.mountPath }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- if $usesData }}
        - name: data
          {{- if $root.Values.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ include "pyros.dataClaimName" $root }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        {{- end }}
      {{- with (default $root.Values.nodeSelector $svc.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (default $root.Values.tolerations $svc.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (default $root.Values.affinity $svc.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "pyros.componentLabels" $ctx | nindent 4 }}
spec:
  type: {{ if $svc.service }}{{ $svc.service.type }}{{ else }}ClusterIP{{ end }}
  selector:
    {{- include "pyros.componentSelectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http
      port: {{ if $svc.service }}{{ $svc.service.port }}{{ else }}{{ $svc.port }}{{ end }}
      targetPort: http
      protocol: TCP
{{- if $root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "pyros.componentLabels" $ctx | nindent 4 }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "pyros.componentSelectorLabels" $ctx | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $root.Values.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end }}
{{- end }}
