// The head computes logits a chunk of token rows at a time (logprobs, and again in backward), so
// no [rows x vocab] tensor outlives one chunk. Chunks of a few rows, whose edges fall inside
// sequences and across padding, must give what one chunk of every row gives: log-probs, entropy
// and every gradient, on a vocabulary large enough that the head dominates the model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Model } from '@temper/native';

import { fixtureNames, fixturesDir, readGolden, relErr, tinyConfig, writeSafetensors } from './helpers';

const VOCAB = 40_000;
const B = 3;
const T = 21;
const N = B * T;

function batch(): { tokens: Int32Array; lengths: number[]; w: Float32Array } {
  const tokens = Int32Array.from({ length: N }, (_, i) => (i * 7919 + ((i * i) % 101) * 331) % VOCAB);
  const lengths = [T, 9, 16];
  // Zero weight on the first 8 positions of every row (a prompt): with 4-row chunks some chunks
  // carry no weight at all and are skipped in backward; their rows must still get no gradient.
  const w = Float32Array.from({ length: B * (T - 1) }, (_, i) => (i % (T - 1) < 8 ? 0 : Math.cos(0.7 * i)));
  return { tokens, lengths, w };
}

/**
 * The weights with the embedding and head 50 times the init: logits of std ~5 rather than ~0.1,
 * so rows' log-sum-exps differ and a row read against another row's would show.
 */
function sharpened(bytes: Uint8Array): Uint8Array {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'temper-chunked-')), 'w.safetensors');
  fs.writeFileSync(file, bytes);
  const { tensors } = readGolden(file);
  fs.rmSync(path.dirname(file), { recursive: true });
  const out: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
  for (const [name, t] of tensors) {
    const scale = name === 'model.embed_tokens.weight' || name === 'lm_head.weight' ? 50 : 1;
    out[name] = { dtype: 'F32', shape: t.shape, bytes: new Uint8Array(Float32Array.from(t.data, (x) => x * scale).buffer) };
  }
  return writeSafetensors(out);
}

async function run(tied: boolean, headChunkRows: number) {
  const cfg = tinyConfig({ vocab_size: VOCAB, hidden_size: 32, intermediate_size: 48, head_dim: 8, tie_word_embeddings: tied });
  const m = await Model.create(cfg, { seed: 9, headChunkRows });
  await m.importWeights(sharpened(await m.exportWeights()));
  const { tokens, lengths, w } = batch();
  const { logprobs, entropy } = await m.logprobs(tokens, { batch: B, seqLen: T, lengths, entropy: true });
  await m.backward(w);
  return { m, tokens, logprobs, entropy: entropy!, grads: await m.grads() };
}

/** log p(token[t+1] | ..t) and the entropy from full logits, in double. */
function fromLogits(logits: Float32Array, tokens: Int32Array, lengths: number[]) {
  const lp = new Float64Array(B * (T - 1));
  const ent = new Float64Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < lengths[b]; t++) {
      const row = logits.subarray((b * T + t) * VOCAB, (b * T + t + 1) * VOCAB);
      let mx = -Infinity;
      for (const x of row) mx = Math.max(mx, x);
      let s = 0;
      let sl = 0;
      for (const x of row) {
        const e = Math.exp(x - mx);
        s += e;
        sl += e * x;
      }
      const lse = mx + Math.log(s);
      lp[b * (T - 1) + t] = row[tokens[b * T + t + 1]] - lse;
      ent[b * (T - 1) + t] = lse - sl / s;
    }
  }
  return { lp, ent };
}

describe.each([
  ['tied head', true],
  ['untied head', false],
])('chunked head (%s, vocabulary 40,000)', (_, tied) => {
  it('gives the log-probs, entropy and gradients of one chunk holding every row', async () => {
    const whole = await run(tied, N);
    for (const rows of [4, 7]) {
      const chunked = await run(tied, rows);
      expect(relErr(chunked.logprobs, whole.logprobs)).toBeLessThan(1e-6);
      expect(relErr(chunked.entropy, whole.entropy)).toBeLessThan(1e-6);
      expect(Object.keys(chunked.grads).sort()).toEqual(Object.keys(whole.grads).sort());
      for (const [name, g] of Object.entries(whole.grads)) {
        const err = relErr(chunked.grads[name], g);
        if (!(err < 2e-6)) throw new Error(`${rows}-row chunks: grad ${name}: relative error ${err}`);
      }
      // The head's gradient is not trivially zero: the comparison above means something.
      const head = tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
      expect(chunked.grads[head].some((x) => x !== 0)).toBe(true);
    }
  });

  it('agrees with log-softmax over the full logits', async () => {
    const chunked = await run(tied, 5);
    const { lengths } = batch();
    const logits = await chunked.m.forward(chunked.tokens, { batch: B, seqLen: T });
    const ref = fromLogits(logits, chunked.tokens, lengths);
    expect(relErr(chunked.logprobs, ref.lp)).toBeLessThan(1e-5);
    expect(relErr(chunked.entropy, ref.ent)).toBeLessThan(1e-5);
  });
});

it('rejects a bad chunk size by name', async () => {
  const m = await Model.create(tinyConfig(), { seed: 1 });
  await expect(m.setTrainingOptions({ headChunkRows: -1 })).rejects.toThrow(/headChunkRows/);
  await expect(m.setTrainingOptions({ headChunkRows: 2.5 })).rejects.toThrow(/headChunkRows/);
});

// The fixtures at their own tolerances with chunks of 3 rows (fixtures.test.ts runs them with
// the engine's choice, one chunk at their sizes).
describe.each(fixtureNames())('fixture %s in 3-row head chunks', (name) => {
  it('computes next-token log-probs and their gradients', async () => {
    const dir = path.join(fixturesDir, name);
    const { tensors: g } = readGolden(path.join(dir, 'golden.safetensors'));
    const [b, t] = g.get('input_ids')!.shape;
    const model = await Model.load(dir, { threads: 2, headChunkRows: 3 });
    if (fs.existsSync(path.join(dir, 'adapter_config.json'))) await model.loadAdapters(dir);
    const { logprobs } = await model.logprobs(Int32Array.from(g.get('input_ids')!.data), { batch: b, seqLen: t });
    expect(relErr(logprobs, g.get('next_token_logprobs')!.data)).toBeLessThan(1e-4);
    await model.backward(Float32Array.from(g.get('dlogprob')!.data));
    const grads = await model.grads();
    for (const k of [...g.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5))) {
      const err = relErr(grads[k], g.get(`grad.${k}`)!.data);
      if (!(err < 1e-3)) throw new Error(`grad ${k}: relative error ${err}`);
    }
  });
});
