// A checkpoint as the model directory of the policy it holds. Most checkpoints are one already;
// a policy version of a GRPO stage that trains adapters holds the adapters alone and names the
// checkpoint with their base (ADAPTER_BASE_LABEL): its directory is that base's model files
// with these adapters (and this checkpoint's own state files) in place of the base's.
import { ADAPTER_BASE_LABEL, ADAPTER_DIR, OPTIMIZER_FILE, RUN_STATE_FILE } from '@temper/service';
import type { CheckpointManifest } from '@temper/proto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { CheckpointClient } from './client';

/** What of the base a checkpoint of adapters alone does not take: the base's adapters and learner state. */
const NOT_FROM_BASE = (file: string) => file === OPTIMIZER_FILE || file === RUN_STATE_FILE || file.startsWith(`${ADAPTER_DIR}/`);

/**
 * Pulls `ref` into `dir` as a whole model directory (see above). Returns its manifest, the
 * base's when it has one, and the bytes pulled.
 */
export async function pullPolicyDir(store: CheckpointClient, ref: string, dir: string): Promise<{ manifest: CheckpointManifest; base?: CheckpointManifest; bytes: number }> {
  const own = await store.pullDir(ref, dir);
  const baseId = own.manifest.labels[ADAPTER_BASE_LABEL];
  if (!baseId) return own;
  const tmp = await fsp.mkdtemp(path.join(dir, '.base-'));
  try {
    const base = await store.pullDir(baseId, tmp);
    if (base.manifest.labels[ADAPTER_BASE_LABEL]) throw new Error(`checkpoint ${own.manifest.id} names ${base.manifest.id} as its base, which holds adapters alone`);
    const mine = new Set(own.manifest.files.map((f) => f.path));
    for (const f of base.manifest.files) {
      if (mine.has(f.path) || NOT_FROM_BASE(f.path)) continue;
      const dest = path.join(dir, ...f.path.split('/'));
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      await fsp.rename(path.join(tmp, ...f.path.split('/')), dest);
    }
    return { manifest: own.manifest, base: base.manifest, bytes: own.bytes + base.bytes };
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
