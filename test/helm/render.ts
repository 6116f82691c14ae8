// Rendering the chart with the real helm binary, and validating what it renders.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helm, HelmResult, repoRoot } from './helm-bin';

export const chartDir = path.join(repoRoot, 'helm', 'temper');

// The KEDA and Prometheus Operator APIs, as a cluster with both installed serves them.
export const crdApis = ['--api-versions', 'keda.sh/v1alpha1', '--api-versions', 'monitoring.coreos.com/v1'];

/**
 * A copy of the chart that helm can render offline. The chart depends on the official NATS
 * chart, which `helm dependency build` fetches from its repository; no network is reachable in
 * CI, so the copy leaves that dependency out. Everything of ours (templates, values, schema)
 * is the chart's own; only the NATS project's objects are missing from the output.
 */
export function offlineChart(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-chart-'));
  fs.cpSync(chartDir, dir, { recursive: true });
  const chartYaml = path.join(dir, 'Chart.yaml');
  const text = fs.readFileSync(chartYaml, 'utf8');
  const at = text.search(/^dependencies:/m);
  if (at < 0) throw new Error('Chart.yaml has no dependencies block');
  // The block runs to the end of the file or the next top-level key.
  const rest = text.slice(at).split('\n');
  let end = 1;
  while (end < rest.length && (rest[end] === '' || /^\s|^#/.test(rest[end]))) end++;
  fs.writeFileSync(chartYaml, text.slice(0, at) + rest.slice(end).join('\n'));
  return dir;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // The rendered objects are checked against their schemas; tests read them loosely.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [k: string]: any;
}

export interface Rendered {
  objects: K8sObject[];
  find(kind: string, name: string): K8sObject;
  all(kind: string): K8sObject[];
}

/** helm template with values files (relative to the chart) and --set pairs; throws on failure. */
export async function render(chart: string, opts: { values?: string[]; set?: string[]; release?: string; namespace?: string; extra?: string[] } = {}): Promise<Rendered> {
  const r = await template(chart, opts);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parse(r.stdout);
}

export function template(chart: string, opts: { values?: string[]; set?: string[]; release?: string; namespace?: string; extra?: string[] } = {}): Promise<HelmResult> {
  const args = ['template', opts.release ?? 'rl', chart, '--namespace', opts.namespace ?? 'temper'];
  for (const v of opts.values ?? []) args.push('-f', path.join(chart, v));
  for (const s of opts.set ?? []) args.push('--set', s);
  args.push(...(opts.extra ?? []));
  return helm(args);
}

export function parse(stream: string): Rendered {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(stream)) {
    if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors[0].message}`);
    const o = doc.toJSON() as K8sObject | null;
    if (o) objects.push(o);
  }
  return {
    objects,
    all: (kind) => objects.filter((o) => o.kind === kind),
    find: (kind, name) => {
      const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
      if (!o) throw new Error(`no ${kind} ${name} in ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
      return o;
    },
  };
}

export interface Validation {
  object: string;
  errors: string[];
}

/** Validates objects against the Kubernetes schemas of their apiVersion/kind (validate-k8s.mjs). */
export function validate(objects: unknown[]): Promise<Validation[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'validate-k8s.mjs')], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`validator exited ${code}: ${err}`));
      resolve(JSON.parse(out) as Validation[]);
    });
    child.stdin.end(JSON.stringify(objects));
  });
}
