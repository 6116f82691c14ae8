// Manifests: the canonical encoding a checkpoint id is the hash of, and the checks a
// manifest from a client must pass before any of its bytes are accepted.
import { CheckpointFile, CheckpointManifest, CheckpointManifest_LabelsEntry, CheckpointManifest_MetricsEntry } from '@temper/proto';
import { createHash } from 'node:crypto';
import { invalidArgument } from './errors';
import { checkFilePath, isSha256 } from './names';

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

/** A manifest as stored: files sorted by path, id computed, created_at set. */
export function sealManifest(m: CheckpointManifest, createdAt: Date): CheckpointManifest {
  const files = [...m.files].sort((a, b) => compare(a.path, b.path));
  const sealed = CheckpointManifest.fromPartial({ ...m, files, createdAt });
  sealed.id = checkpointId(sealed);
  return sealed;
}

/** Throws INVALID_ARGUMENT, naming the field, for a manifest a client may not upload. */
export function checkManifestInput(m: CheckpointManifest | undefined, prefix = 'header.manifest'): asserts m is CheckpointManifest {
  if (!m) throw invalidArgument(`${prefix} is required`);
  if (m.files.length === 0) throw invalidArgument(`${prefix}.files is empty: a checkpoint holds at least one file`);
  const seen = new Set<string>();
  m.files.forEach((f, i) => {
    const field = `${prefix}.files[${i}]`;
    checkFilePath(f.path, `${field}.path`);
    if (seen.has(f.path)) throw invalidArgument(`${field}.path ${JSON.stringify(f.path)} appears twice`);
    seen.add(f.path);
    if (!isSha256(f.sha256)) throw invalidArgument(`${field}.sha256 must be 64 lowercase hex digits, got ${JSON.stringify(f.sha256)}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw invalidArgument(`${field}.size ${f.size} is not a valid size`);
  });
  // A file and a directory of the same name cannot both exist on disk.
  for (const p of seen) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) throw invalidArgument(`${prefix}.files: ${JSON.stringify(dir)} is both a file and the directory of ${JSON.stringify(p)}`);
    }
  }
  if (m.parentId && !isSha256(m.parentId)) throw invalidArgument(`${prefix}.parent_id must be a checkpoint id (64 hex digits), got ${JSON.stringify(m.parentId)}`);
  if (Object.keys(m.metrics ?? {}).includes('')) throw invalidArgument(`${prefix}.metrics has an empty key`);
  if (Object.keys(m.labels ?? {}).includes('')) throw invalidArgument(`${prefix}.labels has an empty key`);
}

export function totalBytes(m: CheckpointManifest): number {
  return m.files.reduce((n, f) => n + f.size, 0);
}

function compare(a: string, b: string): number {
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
