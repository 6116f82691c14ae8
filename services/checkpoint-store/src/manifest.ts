// Manifests as the store keeps them: sealed (id and creation time set), and checked before
// any byte of an upload is accepted. The canonical encoding the id hashes is the client's
// (@temper/checkpoint-client manifest.ts): both ends must compute the same id.
import { checkpointId, compare } from '@temper/checkpoint-client';
import { CheckpointManifest } from '@temper/proto';
import { invalidArgument } from './errors';
import { checkFilePath, isSha256 } from './names';

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
