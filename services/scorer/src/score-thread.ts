// A scoring thread: compiles each spec it is sent once, scores chunks of items and
// reports progress through shared memory so the pool can time out a stuck item.
import { compileRewardSpec, CompiledRewardSpec, createRegistry, loadRewardPlugins } from '@temper/rewards';
import { parentPort, workerData } from 'node:worker_threads';
import type { ChunkReply, ChunkRequest, ThreadData } from './thread-protocol';

const data = workerData as ThreadData;
const registry = createRegistry();
loadRewardPlugins(data.plugins, registry);
const current = new Int32Array(data.progress, 0, 1);
const startedAt = new Float64Array(data.progress, 8, 1);
const specs = new Map<string, CompiledRewardSpec>();

function compiled(key: string, spec: ChunkRequest['spec']): CompiledRewardSpec {
  let c = specs.get(key);
  if (!c) {
    if (specs.size >= 64) specs.clear(); // a run uses one spec; this only bounds a long-lived scorer
    c = compileRewardSpec(spec, { registry, maxCompletionChars: data.maxCompletionChars });
    specs.set(key, c);
  }
  return c;
}

parentPort!.on('message', (req: ChunkRequest) => {
  let reply: ChunkReply;
  try {
    const spec = compiled(req.specKey, req.spec);
    const results = req.items.map((item, i) => {
      startedAt[0] = Date.now();
      Atomics.store(current, 0, i + 1);
      return spec.score(item);
    });
    reply = { id: req.id, results };
  } catch (err) {
    reply = { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
  Atomics.store(current, 0, 0);
  parentPort!.postMessage(reply);
});
