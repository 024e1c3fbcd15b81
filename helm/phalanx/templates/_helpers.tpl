{{/* Names: every object is <release>-phalanx-<part>, capped at the 63 characters a DNS label allows. */}}
{{- define "phalanx.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- define "phalanx.workers" -}}{{ include "phalanx.fullname" . }}-worker{{- end -}}
{{- define "phalanx.workersService" -}}{{ include "phalanx.fullname" . }}-workers{{- end -}}
{{- define "phalanx.coordinator" -}}{{ include "phalanx.fullname" . }}-coordinator{{- end -}}
{{- define "phalanx.worldSize" -}}{{ mul .Values.tp .Values.pp }}{{- end -}}

{{- define "phalanx.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "phalanx.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "phalanx.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The coordinator's --workers: each worker's stable DNS name, stage by stage, tp rank by tp rank (= ordinal). */}}
{{- define "phalanx.workerAddresses" -}}
{{- $names := list -}}
{{- if eq .Values.groupMode "leaderWorkerSet" -}}
{{- /* LWS names a group's workers <lws>-0-<index>, index 1.. (0 is the leader), under the LWS's headless Service. */ -}}
{{- range $i := until (int (include "phalanx.worldSize" .)) -}}
{{- $names = append $names (printf "%s-0-%d.%s.%s.svc.%s:%d" (include "phalanx.fullname" $) (add1 $i) (include "phalanx.fullname" $) $.Release.Namespace $.Values.clusterDomain (int $.Values.worker.controlPort)) -}}
{{- end -}}
{{- else -}}
{{- range $i := until (int (include "phalanx.worldSize" .)) -}}
{{- $names = append $names (printf "%s-%d.%s.%s.svc.%s:%d" (include "phalanx.workers" $) $i (include "phalanx.workersService" $) $.Release.Namespace $.Values.clusterDomain (int $.Values.worker.controlPort)) -}}
{{- end -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{- define "phalanx.apiKeySecret" -}}
{{- .Values.apiKey.existingSecret | default (printf "%s-api-key" (include "phalanx.fullname" .)) -}}
{{- end -}}
{{- define "phalanx.clusterSecret" -}}
{{- .Values.clusterSecret.existingSecret | default (printf "%s-cluster-secret" (include "phalanx.fullname" .)) -}}
{{- end -}}
{{- define "phalanx.hasApiKey" -}}{{ or .Values.apiKey.existingSecret .Values.apiKey.value }}{{- end -}}
{{- define "phalanx.hasClusterSecret" -}}{{ or .Values.clusterSecret.existingSecret .Values.clusterSecret.value }}{{- end -}}

{{/* Non-root, read-only root file system, no capabilities: the process writes only /dev/shm and /tmp. */}}
{{- define "phalanx.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "phalanx.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "phalanx.resources" -}}
requests:
  cpu: {{ .cpu | quote }}
  memory: {{ .memory | quote }}
  {{- range $name, $count := .extra }}
  {{ $name }}: {{ $count | quote }}
  {{- end }}
limits:
  cpu: {{ .cpu | quote }}
  memory: {{ .memory | quote }}
  {{- range $name, $count := .extra }}
  {{ $name }}: {{ $count | quote }}
  {{- end }}
{{- end -}}

{{- define "phalanx.modelVolume" -}}
- name: model
{{- if eq .Values.model.source "pvc" }}
  persistentVolumeClaim:
    claimName: {{ .Values.model.pvc.claimName }}
    readOnly: true
{{- else if eq .Values.model.source "hostPath" }}
  hostPath:
    path: {{ .Values.model.hostPath.path }}
    type: Directory
{{- else }}
  image:
    reference: {{ .Values.model.image.reference }}
    pullPolicy: {{ .Values.model.image.pullPolicy }}
{{- end }}
{{- end -}}

{{- define "phalanx.secretVolumes" -}}
{{- if include "phalanx.hasClusterSecret" . }}
- name: cluster-secret
  secret:
    secretName: {{ include "phalanx.clusterSecret" . }}
    defaultMode: 0400
{{- end }}
{{- end -}}
{{- define "phalanx.secretMounts" -}}
{{- if include "phalanx.hasClusterSecret" . }}
- name: cluster-secret
  mountPath: /etc/phalanx/cluster-secret
  readOnly: true
{{- end }}
{{- end -}}

{{- define "phalanx.affinity" -}}
{{- if .Values.scheduling.requireAvx512 }}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      - matchExpressions:
          - key: feature.node.kubernetes.io/cpu-cpuid.AVX512F
            operator: In
            values: ["true"]
          - key: feature.node.kubernetes.io/cpu-cpuid.AVX512BW
            operator: In
            values: ["true"]
{{- end }}
podAntiAffinity:
{{- if eq .Values.scheduling.spreadMode "required" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: {{ .Values.scheduling.spreadTopologyKey }}
      labelSelector:
        matchLabels:
          {{- include "phalanx.selector" . | nindent 10 }}
          app.kubernetes.io/component: worker
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: {{ .Values.scheduling.spreadTopologyKey }}
        labelSelector:
          matchLabels:
            {{- include "phalanx.selector" . | nindent 12 }}
            app.kubernetes.io/component: worker
{{- end }}
{{- end -}}
