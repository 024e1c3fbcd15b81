{{/* One worker rank's pod spec: the StatefulSet's template and the LeaderWorkerSet's worker template. */}}
{{- define "phalanx.workerPodSpec" -}}
{{- $extra := dict -}}
{{- if .Values.rdma.resourceName }}{{ $_ := set $extra .Values.rdma.resourceName .Values.rdma.count }}{{ end -}}
securityContext:
  {{- include "phalanx.podSecurityContext" . | nindent 2 }}
{{- if .Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
terminationGracePeriodSeconds: 45
affinity:
  {{- include "phalanx.affinity" . | nindent 2 }}
{{- with .Values.scheduling.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.scheduling.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: worker
    image: {{ include "phalanx.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: ["/usr/local/bin/phalanx"]
    args:
      - worker
      - --listen
      - "0.0.0.0:{{ .Values.worker.controlPort }}"
      - --threads
      - "$(PHX_THREADS)"
      - --transport
      - {{ .Values.transport }}
      - --metrics
      - "0.0.0.0:{{ .Values.worker.metricsPort }}"
      - --model-root
      - {{ .Values.model.mountPath }}
      {{- if include "phalanx.hasClusterSecret" . }}
      - --cluster-secret-file
      - /etc/phalanx/cluster-secret/{{ .Values.clusterSecret.key }}
      {{- end }}
    env:
      - name: PHX_THREADS
        valueFrom:
          resourceFieldRef:
            containerName: worker
            resource: limits.cpu
            divisor: "1"
      - name: UCX_TLS
        value: {{ .Values.ucx.tls | quote }}
      {{- if .Values.ucx.netDevices }}
      - name: UCX_NET_DEVICES
        value: {{ .Values.ucx.netDevices | quote }}
      {{- end }}
      {{- with .Values.worker.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    ports:
      - name: control
        containerPort: {{ .Values.worker.controlPort }}
      - name: metrics
        containerPort: {{ .Values.worker.metricsPort }}
    resources:
      {{- include "phalanx.resources" (dict "cpu" .Values.worker.cpu "memory" .Values.worker.memory "extra" $extra) | nindent 6 }}
    # /health on the metrics port: 200 while the worker serves and its event loop turns (it answers during a long
    # prefill), 503 while it starts, drains after SIGTERM or hangs (monitoring/worker_health.h).
    readinessProbe:
      httpGet:
        path: /health
        port: metrics
      periodSeconds: 5
    livenessProbe:
      httpGet:
        path: /health
        port: metrics
      initialDelaySeconds: 10
      periodSeconds: 10
      failureThreshold: 6
    securityContext:
      {{- include "phalanx.containerSecurityContext" . | nindent 6 }}
    volumeMounts:
      - name: model
        mountPath: {{ .Values.model.mountPath }}
        readOnly: true
      - name: shm
        mountPath: /dev/shm
      - name: tmp
        mountPath: /tmp
      {{- include "phalanx.secretMounts" . | nindent 6 }}
volumes:
  {{- include "phalanx.modelVolume" . | nindent 2 }}
  - name: shm
    emptyDir:
      medium: Memory
      sizeLimit: {{ .Values.worker.shmSize }}
  - name: tmp
    emptyDir: {}
  {{- include "phalanx.secretVolumes" . | nindent 2 }}
{{- end -}}

{{/* The coordinator's pod spec: the Deployment's template and the LeaderWorkerSet's leader template. */}}
{{- define "phalanx.coordinatorPodSpec" -}}
securityContext:
  {{- include "phalanx.podSecurityContext" . | nindent 2 }}
terminationGracePeriodSeconds: 45
{{- with .Values.scheduling.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.scheduling.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: coordinator
    image: {{ include "phalanx.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: ["/usr/local/bin/phalanx"]
    args:
      - coordinator
      - --model
      - "{{ .Values.model.mountPath }}/{{ .Values.model.directory }}"
      - --workers
      - {{ include "phalanx.workerAddresses" . | quote }}
      - --tp
      - "{{ .Values.tp }}"
      - --pp
      - "{{ .Values.pp }}"
      - --threads
      - "{{ .Values.worker.cpu }}"
      - --dtype
      - {{ .Values.dtype }}
      - --kv-dtype
      - {{ .Values.kvDtype }}
      - --kv-tokens
      - "{{ .Values.kvTokens }}"
      - --host
      - 0.0.0.0
      - --port
      - "{{ .Values.coordinator.port }}"
      - --model-name
      - {{ .Values.coordinator.modelName | quote }}
      - --max-running
      - "{{ .Values.coordinator.maxRunning }}"
      - --max-waiting
      - "{{ .Values.coordinator.maxWaiting }}"
      - --recovery-timeout
      - "{{ .Values.coordinator.recoveryTimeoutSeconds }}"
      - --connect-timeout
      - "{{ .Values.coordinator.connectTimeoutSeconds }}"
      {{- if include "phalanx.hasClusterSecret" . }}
      - --cluster-secret-file
      - /etc/phalanx/cluster-secret/{{ .Values.clusterSecret.key }}
      {{- end }}
      {{- if include "phalanx.hasApiKey" . }}
      - --api-key-file
      - /etc/phalanx/api-key/{{ .Values.apiKey.key }}
      {{- end }}
      {{- range .Values.coordinator.extraArgs }}
      - {{ . | quote }}
      {{- end }}
    ports:
      - name: http
        containerPort: {{ .Values.coordinator.port }}
    resources:
      {{- include "phalanx.resources" (dict "cpu" .Values.coordinator.cpu "memory" .Values.coordinator.memory "extra" dict) | nindent 6 }}
    # /health answers 200 once every worker holds its shard; the load of 29 GB may take many minutes.
    startupProbe:
      httpGet:
        path: /health
        port: http
      periodSeconds: 10
      failureThreshold: {{ div .Values.coordinator.startupSeconds 10 }}
    readinessProbe:
      httpGet:
        path: /health
        port: http
      periodSeconds: 5
    # The TCP port, never /health: a worker reconnecting must not get the coordinator killed.
    livenessProbe:
      tcpSocket:
        port: http
      periodSeconds: 10
      failureThreshold: 6
    securityContext:
      {{- include "phalanx.containerSecurityContext" . | nindent 6 }}
    volumeMounts:
      - name: model
        mountPath: {{ .Values.model.mountPath }}
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- include "phalanx.secretMounts" . | nindent 6 }}
      {{- if include "phalanx.hasApiKey" . }}
      - name: api-key
        mountPath: /etc/phalanx/api-key
        readOnly: true
      {{- end }}
volumes:
  {{- include "phalanx.modelVolume" . | nindent 2 }}
  - name: tmp
    emptyDir: {}
  {{- include "phalanx.secretVolumes" . | nindent 2 }}
  {{- if include "phalanx.hasApiKey" . }}
  - name: api-key
    secret:
      secretName: {{ include "phalanx.apiKeySecret" . }}
      defaultMode: 0400
  {{- end }}
{{- end -}}
