{{/* The release's name for every object: floe-<pipeline>, or the release name. */}}
{{- define "floe.name" -}}
{{- printf "floe-%s" .Values.pipeline.name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "floe.labels" -}}
app.kubernetes.io/name: floe-host
app.kubernetes.io/instance: {{ .Values.pipeline.name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/*
The memory budget: DuckDB + one plugin instance + the host must fit in the
pod's limit, or rendering fails with the numbers.
*/}}
{{- define "floe.checkBudget" -}}
{{- $r := .Values.resources -}}
{{- $need := add $r.duckdbMemoryMiB $r.pluginMemoryMiB $r.hostMemoryMiB -}}
{{- if gt (int $need) (int $r.memoryMiB) -}}
{{- fail (printf "resources: duckdbMemoryMiB (%v) + pluginMemoryMiB (%v) + hostMemoryMiB (%v) = %v MiB, more than the pod's memoryMiB (%v); raise memoryMiB or lower the others" $r.duckdbMemoryMiB $r.pluginMemoryMiB $r.hostMemoryMiB $need $r.memoryMiB) -}}
{{- end -}}
{{- end -}}

{{/* platform.yaml: the values' platform with the budget's settings merged in. */}}
{{- define "floe.platform" -}}
{{- $r := .Values.resources -}}
{{- $budget := dict
      "compute" (dict .Values.compute (dict "properties" (dict "memory_limit" (printf "%vMiB" $r.duckdbMemoryMiB) "threads" (int $r.cpu.limit))))
      "plugins" (dict "memory_limit" (printf "%vMiB" $r.pluginMemoryMiB)) -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.platform) $budget) -}}
{{- end -}}

{{/* The Job's spec, for a Job or a CronJob's jobTemplate. */}}
{{- define "floe.jobSpec" -}}
backoffLimit: {{ .Values.job.backoffLimit }}
activeDeadlineSeconds: {{ .Values.job.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ .Values.job.ttlSecondsAfterFinished }}
# Exit codes (stable; README "Exit codes"): 2 configuration, 3 plugin
# contract, 4 refused data fail the same way on every attempt, so they fail
# the Job at once; a disruption (drain, preemption) does not count against
# backoffLimit, since floe-host stopped at a safe point (exit 143).
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: floe-host
        operator: In
        values: [2, 3, 4]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
template:
  metadata:
    labels:
      {{- include "floe.labels" . | nindent 6 }}
    annotations:
      # A new platform.yaml rolls into the next run.
      checksum/platform: {{ include "floe.platform" . | sha256sum }}
  spec:
    restartPolicy: Never
    terminationGracePeriodSeconds: {{ .Values.job.terminationGracePeriodSeconds }}
    automountServiceAccountToken: false
    securityContext:
      {{- toYaml .Values.podSecurityContext | nindent 6 }}
    containers:
      - name: floe-host
        image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        command: ["/usr/local/bin/floe-host"]
        args: ["run", "/pipeline"]
        env:
          - {name: FLOE_PLATFORM_FILE, value: /etc/floe/platform.yaml}
          - {name: FLOE_STATE_DIR, value: /var/lib/floe}
          - {name: FLOE_LOG, value: {{ .Values.log.level | quote }}}
          - {name: FLOE_LOG_FORMAT, value: {{ .Values.log.format | quote }}}
          # The Job's name: the same for every pod the Job retries, so a
          # retry skips the steps an earlier pod committed.
          - name: FLOE_RUN_ID
            valueFrom:
              fieldRef:
                fieldPath: "metadata.labels['batch.kubernetes.io/job-name']"
          - {name: TMPDIR, value: /tmp}
          {{- with .Values.env }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        resources:
          requests:
            cpu: {{ .Values.resources.cpu.request | quote }}
            memory: {{ printf "%vMi" .Values.resources.memoryMiB | quote }}
            ephemeral-storage: {{ .Values.resources.ephemeralStorage.request | quote }}
          limits:
            cpu: {{ .Values.resources.cpu.limit | quote }}
            memory: {{ printf "%vMi" .Values.resources.memoryMiB | quote }}
            ephemeral-storage: {{ .Values.resources.ephemeralStorage.limit | quote }}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsNonRoot: true
          capabilities:
            drop: ["ALL"]
        volumeMounts:
          - {name: platform, mountPath: /etc/floe, readOnly: true}
          - {name: pipeline, mountPath: /pipeline, readOnly: true}
          - {name: tmp, mountPath: /tmp}
          - {name: state, mountPath: /var/lib/floe}
          {{- range .Values.secrets.files }}
          - {name: {{ printf "secret-%s" . | quote }}, mountPath: {{ printf "/var/run/secrets/%s" . | quote }}, subPath: {{ . | quote }}, readOnly: true}
          {{- end }}
          {{- range .Values.secrets.directories }}
          - {name: {{ printf "secret-%s" .name | quote }}, mountPath: {{ printf "/var/run/secrets/%s" .name | quote }}, readOnly: true}
          {{- end }}
    volumes:
      - name: platform
        configMap:
          name: {{ printf "%s-platform" (include "floe.name" .) | quote }}
          items:
            - {key: platform.yaml, path: platform.yaml}
      - name: pipeline
        projected:
          sources:
            {{- range .Values.pipeline.configMaps }}
            - configMap:
                name: {{ .name | quote }}
                items:
                  {{- toYaml .items | nindent 18 }}
            {{- end }}
      - name: tmp
        emptyDir:
          sizeLimit: {{ .Values.resources.spillSizeLimit | quote }}
      - name: state
        emptyDir:
          sizeLimit: {{ .Values.resources.stateSizeLimit | quote }}
      {{- range .Values.secrets.files }}
      - name: {{ printf "secret-%s" . | quote }}
        secret:
          secretName: {{ . | quote }}
          defaultMode: 0440
          items:
            - {key: {{ . | quote }}, path: {{ . | quote }}}
      {{- end }}
      {{- range .Values.secrets.directories }}
      - name: {{ printf "secret-%s" .name | quote }}
        secret:
          secretName: {{ .name | quote }}
          defaultMode: 0440
          items:
            {{- range .keys }}
            - {key: {{ . | quote }}, path: {{ . | quote }}}
            {{- end }}
      {{- end }}
{{- end -}}
