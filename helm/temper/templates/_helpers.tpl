{{/* Names, labels and the values every template shares. */}}

{{- define "temper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "temper.fullname" -}}
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

{{/* The name of one service's objects: (dict "root" $ "name" "learner") */}}
{{- define "temper.componentName" -}}
{{- printf "%s-%s" (include "temper.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "temper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "temper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: temper
{{- end -}}

{{/* Selector labels of one service: (dict "root" $ "name" "learner") */}}
{{- define "temper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "temper.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "temper.componentLabels" -}}
{{ include "temper.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Selector of every pod of this release. */}}
{{- define "temper.releaseSelector" -}}
app.kubernetes.io/name: {{ include "temper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Whether a service runs on a GPU node pool: (dict "root" $ "name" "learner" "svc" $svc) */}}
{{- define "temper.usesGpu" -}}
{{- if and .svc.gpu .svc.gpu.enabled -}}true{{- end -}}
{{- end -}}

{{- define "temper.image" -}}
{{- $img := ternary .root.Values.image.cuda .root.Values.image.cpu (eq (include "temper.usesGpu" .) "true") -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{- define "temper.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- include "temper.componentName" . -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{/* The bundled NATS chart's service name, as that chart names it. */}}
{{- define "temper.natsFullname" -}}
{{- if contains "nats" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "temper.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "%s://%s.%s.svc:4222" (ternary "tls" "nats" (eq (include "temper.natsTls" .) "true")) (include "temper.natsFullname" .) .Release.Namespace -}}
{{- else -}}
{{- required "externalNats.url is required when nats.enabled is false" .Values.externalNats.url -}}
{{- end -}}
{{- end -}}

{{/* Whether the services reach NATS over TLS: the bundled NATS's TLS, or externalNats.tls. */}}
{{- define "temper.natsTls" -}}
{{- if .Values.nats.enabled -}}
{{- if dig "config" "nats" "tls" "enabled" false .Values.nats -}}true{{- end -}}
{{- else if .Values.externalNats.tls.enabled -}}true{{- end -}}
{{- end -}}

{{/* The bundled NATS's Secrets; the NATS chart's values name the first and the last the same
     way (tplYaml in values.yaml), so they are built from the release name alone. */}}
{{- define "temper.natsTlsSecret" -}}{{ printf "%s-temper-nats-tls" .Release.Name }}{{- end -}}
{{- define "temper.natsUsersSecret" -}}{{ printf "%s-temper-nats-users" .Release.Name }}{{- end -}}
{{- define "temper.natsAuthSecret" -}}{{ printf "%s-temper-nats-auth" .Release.Name }}{{- end -}}

{{/* Each service's NATS user and permissions (JSON), from the table in
     packages/bus/src/permissions.ts, with the object store's bucket prefix filled in. */}}
{{- define "temper.natsPermissions" -}}
{{- .Files.Get "files/nats-permissions.json" | replace "__CHECKPOINT_BUCKET__" .Values.checkpoints.nats.bucket -}}
{{- end -}}

{{- define "temper.natsMonitoringEndpoint" -}}
{{- if .Values.nats.enabled -}}
{{- printf "%s.%s.svc:8222" (include "temper.natsFullname" .) .Release.Namespace -}}
{{- else -}}
{{- required "externalNats.monitoringEndpoint is required for KEDA's JetStream scaler when nats.enabled is false" .Values.externalNats.monitoringEndpoint -}}
{{- end -}}
{{- end -}}

{{/* The Secret with a service's tls.crt, tls.key and ca.crt: (dict "root" $ "name" "learner") */}}
{{- define "temper.tlsSecret" -}}
{{- if eq .root.Values.tls.source "existingSecret" -}}
{{- .root.Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "temper.componentName" .) -}}
{{- end -}}
{{- end -}}

{{- define "temper.authSecret" -}}
{{- default (printf "%s-auth" (include "temper.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "temper.dataClaim" -}}
{{- default (printf "%s-data" (include "temper.fullname" .)) .Values.data.pvc.existingClaim -}}
{{- end -}}

{{- define "temper.checkpointClaim" -}}
{{- default (printf "%s-checkpoints" (include "temper.fullname" .)) .Values.checkpoints.pvc.existingClaim -}}
{{- end -}}

{{/* Whether KEDA scales a service: (dict "root" $ "name" "scorer" "svc" $svc) */}}
{{- define "temper.kedaScaled" -}}
{{- if and .root.Values.keda.enabled .svc.autoscaling (has .name (list "generator" "scorer")) -}}true{{- end -}}
{{- end -}}

{{/* Checks across values that a JSON schema cannot express; fails the install with a clear message. */}}
{{- define "temper.validate" -}}
{{- $cp := .Values.checkpoints -}}
{{- if and (eq $cp.backend "fs") $cp.pvc.mountIn (not (has "ReadWriteMany" $cp.pvc.accessModes)) -}}
{{- fail (printf "checkpoints.pvc.mountIn shares the checkpoint volume with %v: checkpoints.pvc.accessModes must include ReadWriteMany" $cp.pvc.mountIn) -}}
{{- end -}}
{{- if and (eq $cp.backend "fs") (gt (int (index .Values.services "checkpoint-store").replicas) 1) (not (has "ReadWriteMany" $cp.pvc.accessModes)) -}}
{{- fail "services.checkpoint-store.replicas > 1 with the fs backend needs checkpoints.pvc.accessModes to include ReadWriteMany (or use checkpoints.backend=nats)" -}}
{{- end -}}
{{- if and (not .Values.nats.enabled) (ne .Values.externalNats.auth.type "none") (not .Values.externalNats.auth.existingSecret) -}}
{{- fail (printf "externalNats.auth.type is %s: externalNats.auth.existingSecret must name the Secret with the credentials" .Values.externalNats.auth.type) -}}
{{- end -}}
{{- if and (not .Values.nats.enabled) .Values.externalNats.tls.enabled (not .Values.externalNats.tls.existingSecret) -}}
{{- fail "externalNats.tls.enabled: externalNats.tls.existingSecret must name the Secret with the CA (caKey) that signed the NATS server's certificate" -}}
{{- end -}}
{{- if and (not .Values.nats.enabled) .Values.externalNats.tls.enabled (ne (empty .Values.externalNats.tls.certKey) (empty .Values.externalNats.tls.keyKey)) -}}
{{- fail "externalNats.tls.certKey and externalNats.tls.keyKey go together: both for a client certificate, or neither" -}}
{{- end -}}
{{- if and (eq .Values.tls.source "existingSecret") (not .Values.tls.existingSecret) -}}
{{- fail "tls.source is existingSecret: tls.existingSecret must name the Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- if and .Values.keda.enabled (not (.Capabilities.APIVersions.Has "keda.sh/v1alpha1")) -}}
{{- fail "keda.enabled needs KEDA in the cluster (API keda.sh/v1alpha1 is not served); install KEDA or set keda.enabled=false" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
{{- fail "metrics.serviceMonitor.enabled needs the Prometheus Operator (API monitoring.coreos.com/v1 is not served)" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- end -}}
