// Validates Kubernetes objects offline, the way the API server would reject them.
// stdin: a JSON array of objects; stdout: a JSON array of { object, errors } (errors empty when valid).
//
// Two checks per object:
//  - the OpenAPI schema of its apiVersion/kind (types, required fields, enums, formats), from
//    the kubernetes-models packages: core kinds, KEDA (keda.sh), the Prometheus Operator
//    (monitoring.coreos.com) and cert-manager (cert-manager.io);
//  - unknown fields (what `kubectl --validate=strict` reports), by walking the object along the
//    field tables of @kubernetes/client-node's generated models (core kinds only).
// Kept as an ES module run in its own node process because these packages are ES modules only.
import { Buffer } from 'node:buffer';
import process from 'node:process';
import * as k8s from '@kubernetes/client-node';

const groups = {
  '': 'kubernetes-models',
  keda: '@kubernetes-models/keda',
  monitoring: '@kubernetes-models/prometheus-operator',
  certManager: '@kubernetes-models/cert-manager',
};

function modelModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  let pkg = groups[''];
  if (group === 'keda.sh') pkg = groups.keda;
  else if (group === 'monitoring.coreos.com') pkg = groups.monitoring;
  else if (group === 'cert-manager.io') pkg = groups.certManager;
  const dir = group === '' ? version : `${group}/${version}`;
  return `${pkg}/${dir}/${kind}`;
}

async function schemaErrors(obj) {
  let mod;
  try {
    mod = await import(modelModule(obj.apiVersion, obj.kind));
  } catch {
    return [`no schema known for ${obj.apiVersion} ${obj.kind}`];
  }
  const Model = mod[obj.kind];
  if (typeof Model !== 'function') return [`no schema known for ${obj.apiVersion} ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return String(err.message ?? err)
      .split(/,\s*(?=data)/)
      .map((s) => s.trim())
      .filter(Boolean);
  }
}

// The client-node model class of a built-in kind: apps/v1 Deployment -> V1Deployment.
function coreClassName(apiVersion, kind) {
  const version = apiVersion.includes('/') ? apiVersion.split('/')[1] : apiVersion;
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

function unknownFields(value, type, at, out) {
  if (value === null || value === undefined) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (!Array.isArray(value)) return out.push(`${at}: expected an array`);
    value.forEach((v, i) => unknownFields(v, arr[1], `${at}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) return out.push(`${at}: expected a map`);
    for (const [k, v] of Object.entries(value)) {
      if (map[1] === 'string' && typeof v !== 'string') out.push(`${at}.${k}: must be a string, got ${typeof v}`);
      else unknownFields(v, map[1], `${at}.${k}`, out);
    }
    return;
  }
  const Model = k8s[type];
  if (typeof Model !== 'function' || !Array.isArray(Model.attributeTypeMap)) return; // a scalar
  if (typeof value !== 'object' || Array.isArray(value)) return out.push(`${at}: expected an object (${type})`);
  const fields = new Map(Model.attributeTypeMap.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = fields.get(k);
    if (t === undefined) out.push(`${at ? at + '.' : ''}${k}: unknown field in ${type}`);
    else unknownFields(v, t, at ? `${at}.${k}` : k, out);
  }
}

async function main() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const objects = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  for (const obj of objects) {
    const errors = [];
    if (!obj || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') {
      results.push({ object: '(no apiVersion/kind)', errors: ['apiVersion and kind are required'] });
      continue;
    }
    errors.push(...(await schemaErrors(obj)));
    const cls = coreClassName(obj.apiVersion, obj.kind);
    const crd = obj.apiVersion.startsWith('keda.sh/') || obj.apiVersion.startsWith('monitoring.coreos.com/');
    if (!crd && typeof k8s[cls] === 'function') {
      unknownFields(obj, cls, '', errors);
    }
    results.push({ object: `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name ?? ''}`.trim(), errors });
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
