// A new policy's weights, from the learner straight to the generators of its run, over core
// NATS: the bytes in chunks under the server's max_payload, with the sender's sha256, sent
// before the checkpoint that commits them is even uploaded. Nothing is stored and delivery is
// at most once, so this is only ever a fast path: a version whose chunks do not all arrive,
// or arrive hashing to something else than the sender said, is dropped, and the generator
// pulls the version's checkpoint from the store once it is committed.
import { headers as natsHeaders, NatsConnection } from '@nats-io/transport-node';
import { createHash, Hash } from 'node:crypto';
import { subjects } from './streams';

const VERSION = 'Temper-Policy-Version';
const CHUNK = 'Temper-Chunk'; // "index/count"
const BYTES = 'Temper-Bytes';
const SHA256 = 'Temper-Sha256';
const KIND = 'Temper-Weights-Kind';

/**
 * What a subscriber gets: one version's bytes, whole, and their sha256 (hex). "model": all the
 * weights (exportWeights); "adapters": the adapters alone (exportAdapters), for a policy that
 * differs from the one before only in them.
 */
export interface StreamedWeights {
  version: number;
  bytes: Uint8Array;
  sha256: string;
  kind: WeightsKind;
}

export type WeightsKind = 'model' | 'adapters';

/** Room left in a message for the headers. */
const HEADER_ROOM = 4096;

/**
 * Publishes `bytes` (whose sha256 is `sha256`, computed here when not given) as policy
 * `version` of `runId`; resolves once the server has them all.
 */
export async function publishWeights(nc: NatsConnection, runId: string, version: number, bytes: Uint8Array, sha256?: string, kind: WeightsKind = 'model'): Promise<void> {
  const sha = sha256 ?? createHash('sha256').update(bytes).digest('hex');
  const chunk = Math.max(HEADER_ROOM, (nc.info?.max_payload ?? 1 << 20) - HEADER_ROOM);
  const count = Math.max(1, Math.ceil(bytes.length / chunk));
  const subject = subjects.policyWeights(runId);
  for (let i = 0; i < count; i++) {
    const h = natsHeaders();
    h.set(VERSION, String(version));
    h.set(CHUNK, `${i}/${count}`);
    h.set(BYTES, String(bytes.length));
    h.set(SHA256, sha);
    h.set(KIND, kind);
    nc.publish(subject, bytes.subarray(i * chunk, (i + 1) * chunk), { headers: h });
  }
  await nc.flush();
}

/**
 * Calls `onWeights` with every version of `runId` whose chunks all arrive, in order, and hash
 * to what the sender said. A version with a chunk missing (a slow or late subscriber) or
 * damaged is skipped without a word: the checkpoint store will have it.
 */
export function subscribeWeights(nc: NatsConnection, runId: string, onWeights: (w: StreamedWeights) => void): { stop(): Promise<void> } {
  const sub = nc.subscribe(subjects.policyWeights(runId));
  // Hashed chunk by chunk as they come, so no one moment pays for the whole file.
  let building: { version: number; count: number; next: number; bytes: Uint8Array; filled: number; hash: Hash; sent: string; kind: WeightsKind } | undefined;
  const done = (async () => {
    for await (const m of sub) {
      const version = Number(m.headers?.get(VERSION));
      const [index, count] = (m.headers?.get(CHUNK) ?? '').split('/').map(Number);
      const total = Number(m.headers?.get(BYTES));
      if (![version, index, count, total].every(Number.isSafeInteger)) continue;
      if (index === 0) building = start(version, count, total, m.headers?.get(SHA256) ?? '', m.headers?.get(KIND) === 'adapters' ? 'adapters' : 'model');
      const b = building;
      if (!b || b.version !== version || b.next !== index || b.count !== count || b.filled + m.data.length > b.bytes.length) {
        building = undefined;
        continue;
      }
      b.bytes.set(m.data, b.filled);
      b.hash.update(m.data);
      b.filled += m.data.length;
      b.next++;
      if (b.next < b.count) continue;
      building = undefined;
      const sha256 = b.hash.digest('hex');
      if (b.filled === b.bytes.length && sha256 === b.sent) onWeights({ version, bytes: b.bytes, sha256, kind: b.kind });
    }
  })();
  return {
    stop: async () => {
      sub.unsubscribe();
      await done;
    },
  };
}

function start(version: number, count: number, total: number, sent: string, kind: WeightsKind) {
  try {
    return { version, count, next: 0, bytes: new Uint8Array(total), filled: 0, hash: createHash('sha256'), sent, kind };
  } catch {
    return undefined; // more than this process can hold: the store has it
  }
}
