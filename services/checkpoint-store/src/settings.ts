// The checkpoint store's settings, from the environment:
//
//   TEMPER_CHECKPOINT_BACKEND        fs (default) or nats
//   TEMPER_CHECKPOINT_DIR            fs: where checkpoints live; nats: where uploads are staged
//                                    (default ~/.temper/checkpoints)
//   TEMPER_CHECKPOINT_KEEP_LAST      retention: checkpoints kept per run and branch (0 = all, default)
//   TEMPER_CHECKPOINT_NATS_BUCKET    nats: bucket name prefix (default temper-checkpoints)
//   TEMPER_CHECKPOINT_NATS_REPLICAS  nats: JetStream replicas (default 1)
//   TEMPER_CHECKPOINT_UPLOAD_TTL_H   hours an abandoned upload is kept (default 24)
import * as os from 'node:os';
import * as path from 'node:path';

export interface StoreSettings {
  backend: 'fs' | 'nats';
  dir: string;
  keepLast: number;
  natsBucket: string;
  natsReplicas: number;
  uploadTtlMs: number;
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
  };
}

function count(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, not ${JSON.stringify(raw)}`);
  return n;
}
