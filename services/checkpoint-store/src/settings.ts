// The checkpoint store's settings, from the environment:
//
//   TEMPER_CHECKPOINT_BACKEND        fs (default) or nats
//   TEMPER_CHECKPOINT_DIR            fs: where checkpoints live; nats: where uploads are staged
//                                    (default ~/.temper/checkpoints)
//   TEMPER_CHECKPOINT_KEEP_LAST      retention: checkpoints kept per run and branch (0 = all, default)
//   TEMPER_CHECKPOINT_NATS_BUCKET    nats: bucket name prefix (default temper-checkpoints)
//   TEMPER_CHECKPOINT_NATS_REPLICAS  nats: JetStream replicas (default 1)
//   TEMPER_CHECKPOINT_UPLOAD_TTL_H   hours an abandoned upload is kept (default 24)
//   TEMPER_CHECKPOINT_UPLOAD_MAX_GIB   most one upload may stage (default 128; a 7B model's
//                                      resumable checkpoint, fp32 weights and AdamW moments, is ~85)
//   TEMPER_CHECKPOINT_STAGING_MAX_GIB  most all uploads in progress may stage together (default 256)
import * as os from 'node:os';
import * as path from 'node:path';
import type { StagingQuota } from './uploads';

export interface StoreSettings {
  backend: 'fs' | 'nats';
  dir: string;
  keepLast: number;
  natsBucket: string;
  natsReplicas: number;
  uploadTtlMs: number;
  quota: StagingQuota;
}

export function storeSettings(env: NodeJS.ProcessEnv = process.env): StoreSettings {
  const backend = env.TEMPER_CHECKPOINT_BACKEND ?? 'fs';
  if (backend !== 'fs' && backend !== 'nats') throw new Error(`TEMPER_CHECKPOINT_BACKEND must be "fs" or "nats", not ${JSON.stringify(backend)}`);
  return {
    backend,
    dir: path.resolve(env.TEMPER_CHECKPOINT_DIR ?? path.join(os.homedir(), '.temper', 'checkpoints')),
    keepLast: count(env, 'TEMPER_CHECKPOINT_KEEP_LAST', 0),
    natsBucket: env.TEMPER_CHECKPOINT_NATS_BUCKET ?? 'temper-checkpoints',
    natsReplicas: count(env, 'TEMPER_CHECKPOINT_NATS_REPLICAS', 1),
    uploadTtlMs: count(env, 'TEMPER_CHECKPOINT_UPLOAD_TTL_H', 24) * 3600_000,
    quota: {
      uploadBytes: gibibytes(env, 'TEMPER_CHECKPOINT_UPLOAD_MAX_GIB', 128),
      totalBytes: gibibytes(env, 'TEMPER_CHECKPOINT_STAGING_MAX_GIB', 256),
    },
  };
}

function gibibytes(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback * 2 ** 30;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a number of GiB > 0 (e.g. 0.5 or 64), not ${JSON.stringify(raw)}`);
  return Math.floor(n * 2 ** 30);
}

function count(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, not ${JSON.stringify(raw)}`);
  return n;
}
