// What both ends agree a manifest means: the fields a caller gives, the canonical encoding a
// checkpoint id is the sha256 of (the store seals with it, a client derives upload ids from
// it), and which file paths may appear in one.
import { CheckpointFile, CheckpointManifest, CheckpointManifest_LabelsEntry, CheckpointManifest_MetricsEntry } from '@temper/proto';
import { createHash } from 'node:crypto';

/** What a caller says about a checkpoint; files, id and created_at are filled in. */
export type ManifestFields = Partial<Omit<CheckpointManifest, 'id' | 'files' | 'createdAt'>>;

/**
 * The bytes a checkpoint id is the sha256 of: the protobuf encoding with id and created_at
 * empty, fields in number order, files sorted by path and map entries sorted by key.
 */
export function canonicalManifestBytes(m: CheckpointManifest): Buffer {
  const files = [...m.files].sort((a, b) => compare(a.path, b.path)).map((f) => CheckpointFile.fromPartial(f));
  // Fields 1-9 (map fields empty, created_at unset) encode in field order...
  const head = CheckpointManifest.encode(
    CheckpointManifest.fromPartial({ ...m, id: '', files, metrics: {}, labels: {}, createdAt: undefined }),
  ).finish();
  const parts: Uint8Array[] = [head];
  // ...then map entries, field 10 (metrics) and 12 (labels), sorted by key.
  for (const key of Object.keys(m.metrics ?? {}).sort(compare)) {
    parts.push(lengthDelimited(10, CheckpointManifest_MetricsEntry.encode({ key, value: m.metrics[key] }).finish()));
  }
  for (const key of Object.keys(m.labels ?? {}).sort(compare)) {
    parts.push(lengthDelimited(12, CheckpointManifest_LabelsEntry.encode({ key, value: m.labels[key] }).finish()));
  }
  return Buffer.concat(parts);
}

export function checkpointId(m: CheckpointManifest): string {
  return createHash('sha256').update(canonicalManifestBytes(m)).digest('hex');
}

export function totalBytes(m: CheckpointManifest): number {
  return m.files.reduce((n, f) => n + f.size, 0);
}

const MAX_PATH = 1024;

/**
 * Why `p` is not a safe relative file path inside a checkpoint, or undefined when it is. File
 * paths end up joined to directories on the store and on every machine that pulls the
 * checkpoint, so anything that could leave the checkpoint directory is refused, both ways.
 */
export function filePathProblem(p: string): string | undefined {
  if (p.length === 0) return 'is empty';
  if (p.length > MAX_PATH) return `is longer than ${MAX_PATH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'contains a control character';
  if (p.includes('\\')) return 'contains a backslash (use "/" between directories)';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  for (const segment of p.split('/')) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
  }
  return undefined;
}

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lengthDelimited(field: number, body: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
