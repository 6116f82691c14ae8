// bench:weight-sync: what one GRPO step's weight sync costs when all weights train, against
// when LoRA adapters train on a frozen base: the learner exports the bytes and hashes them,
// streams them over a local nats-server to a subscriber (the generator's side), which loads
// them into its spare model. Both measured side by side in one process, the median of a few
// rounds each. One JSON object with --json.
//
//   npm run bench:weight-sync -- [--hidden 512] [--layers 8] [--intermediate 1408] [--vocab 32000]
//                                [--rank 16] [--rounds 3] [--threads N] [--json]
import { connectBus, publishWeights, startNatsServer, StreamedWeights, subscribeWeights } from '@temper/bus';
import { HfConfig, Model } from '@temper/native';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    hidden: { type: 'string', default: '512' },
    layers: { type: 'string', default: '8' },
    intermediate: { type: 'string', default: '1408' },
    vocab: { type: 'string', default: '32000' },
    rank: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    json: { type: 'boolean', default: false },
  },
});

const hidden = Number(o.hidden);
const config: HfConfig = {
  model_type: 'qwen2',
  vocab_size: Number(o.vocab),
  hidden_size: hidden,
  intermediate_size: Number(o.intermediate),
  num_hidden_layers: Number(o.layers),
  num_attention_heads: hidden / 64,
  num_key_value_heads: Math.max(1, hidden / 256),
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
};
const threads = Number(o.threads);
const rounds = Number(o.rounds);
const adapter = { r: Number(o.rank), alpha: 2 * Number(o.rank), targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };

interface Sync {
  bytes: number;
  exportMs: number;
  streamMs: number;
  importMs: number;
  totalMs: number;
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const learnerBus = await connectBus(nats.url, 'bench-learner');
  const generatorBus = await connectBus(nats.url, 'bench-generator');
  const runId = 'bench-weight-sync';
  let arrived: ((w: StreamedWeights) => void) | undefined;
  const sub = subscribeWeights(generatorBus.nc, runId, (w) => arrived?.(w));
  await generatorBus.nc.flush(); // the subscription is on the server before anything is sent
  try {
    const learner = await Model.create(config, { seed: 1, threads });
    const spare = await Model.create(config, { seed: 2, threads });
    let version = 0;
    // One sync: export and hash, stream until the subscriber has it whole, load it there.
    const sync = async (exportBytes: () => Promise<Uint8Array>, load: (b: Uint8Array) => Promise<void>, kind: 'model' | 'adapters'): Promise<Sync> => {
      const t0 = performance.now();
      const bytes = await exportBytes();
      const sha = createHash('sha256').update(bytes).digest('hex');
      const t1 = performance.now();
      const got = new Promise<StreamedWeights>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`version ${version + 1} did not arrive whole in 120 s`)), 120_000);
        arrived = (w) => {
          clearTimeout(timer);
          resolve(w);
        };
      });
      await publishWeights(learnerBus.nc, runId, ++version, bytes, sha, kind);
      const w = await got;
      const t2 = performance.now();
      await load(w.bytes);
      const t3 = performance.now();
      return { bytes: bytes.length, exportMs: t1 - t0, streamMs: t2 - t1, importMs: t3 - t2, totalMs: t3 - t0 };
    };
    const full: Sync[] = [];
    const lora: Sync[] = [];
    for (let i = 0; i < rounds; i++) full.push(await sync(() => learner.exportWeights(), (b) => spare.importWeights(b), 'model'));
    await learner.addAdapters({ ...adapter, seed: 3 });
    await spare.addAdapters({ ...adapter, seed: 4 });
    for (let i = 0; i < rounds; i++) lora.push(await sync(() => learner.exportAdapters(), (b) => spare.importAdapters(b), 'adapters'));
    const f = median(full);
    const a = median(lora);
    const result = {
      config: { hidden, layers: config.num_hidden_layers, intermediate: config.intermediate_size, vocab: config.vocab_size, lora_rank: adapter.r, lora_targets: 'all linear' },
      threads,
      rounds,
      full: f,
      adapters: a,
      bytes_ratio: f.bytes / a.bytes,
      time_ratio: f.totalMs / a.totalMs,
    };
    if (o.json) console.log(JSON.stringify(result));
    else {
      console.log(`all weights: ${mb(f.bytes)} MB in ${f.totalMs.toFixed(0)} ms (export ${f.exportMs.toFixed(0)}, stream ${f.streamMs.toFixed(0)}, load ${f.importMs.toFixed(0)})`);
      console.log(`adapters:    ${mb(a.bytes)} MB in ${a.totalMs.toFixed(1)} ms (export ${a.exportMs.toFixed(1)}, stream ${a.streamMs.toFixed(1)}, load ${a.importMs.toFixed(1)})`);
      console.log(`${result.bytes_ratio.toFixed(0)}x fewer bytes, ${result.time_ratio.toFixed(0)}x faster`);
    }
  } finally {
    await sub.stop();
    await learnerBus.close();
    await generatorBus.close();
    await nats.stop();
  }
}

function median(xs: Sync[]): Sync {
  const pick = (k: keyof Sync) => [...xs.map((x) => x[k])].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
  return { bytes: pick('bytes'), exportMs: pick('exportMs'), streamMs: pick('streamMs'), importMs: pick('importMs'), totalMs: pick('totalMs') };
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
