// The CUDA backend against the truth, as one set of checks shared by the Jest suite
// (native/test/cuda_parity.test.ts, which skips without a device) and the command line, for a
// GPU machine that has Node but no Jest:
//   node native/dev/cuda/parity.js [fixtures dir]        (after `npx tsc -b native`)
// Each check throws on a tolerance it misses and returns the errors it measured.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// Tolerances: fp32 mode as the CPU engine's fixtures test; bf16 products (8-bit mantissa
// operands, fp32 accumulation) per METHOD.md's guide for bf16, with room for a few layers.
const TOL = {
  fp32: { logits: 2e-4, grads: 2e-3 },
  bf16: { logits: 3e-2, grads: 8e-2 },
};

function relErr(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

function within(what, err, tol, out) {
  out[what] = err;
  if (!(err < tol)) throw new Error(`${what}: relative error ${err} is not below ${tol}`);
}

// A safetensors reader apart from the engine's (the golden values must not pass through it).
function readGolden(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const tensors = new Map();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = { F32: 4, F64: 8, I32: 4 }[e.dtype];
    const get = { F32: (i) => view.getFloat32(4 * i, true), F64: (i) => view.getFloat64(8 * i, true), I32: (i) => view.getInt32(4 * i, true) }[e.dtype];
    if (!get) throw new Error(`${file}: dtype ${e.dtype} not handled`);
    tensors.set(name, { shape: e.shape, data: Float64Array.from({ length: bytes.length / size }, (_, i) => get(i)) });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

// torch.optim.AdamW's first step from the model's own gradient: the kernel, exactly.
function adamwFirstStep(p, g, h) {
  return Float64Array.from(p, (x, i) => {
    const mhat = g[i], vhat = g[i] * g[i];
    return x * (1 - h.lr * h.weight_decay) - (h.lr * mhat) / (Math.sqrt(vhat) + h.eps);
  });
}

// The fixtures at the top of dir and in dir/next (architectures added since: the same checks).
function fixtureNames(dir) {
  const inside = (sub) => (fs.existsSync(path.join(dir, sub)) ? fs.readdirSync(path.join(dir, sub)).map((f) => path.posix.join(sub, f)) : []);
  return [...inside('.').map((f) => path.posix.normalize(f)), ...inside('next')].filter((f) => fs.existsSync(path.join(dir, f, 'golden.safetensors'))).sort();
}

function checks(engine) {
  const { Model } = engine;

  async function fixture(dir, precision) {
    const out = {};
    const { tensors: g, metadata } = readGolden(path.join(dir, 'golden.safetensors'));
    const [B, T] = g.get('input_ids').shape;
    const tokens = Int32Array.from(g.get('input_ids').data);
    const adapters = fs.existsSync(path.join(dir, 'adapter_config.json'));
    const open = async () => {
      const m = await Model.load(dir, { device: 'cuda', precision, threads: 1 });
      if (adapters) await m.loadAdapters(dir);
      return m;
    };
    const m = await open();
    within('logits', relErr(await m.forward(tokens, { batch: B, seqLen: T }), g.get('logits').data), TOL[precision].logits, out);
    const { logprobs } = await m.logprobs(tokens, { batch: B, seqLen: T });
    within('logprobs', relErr(logprobs, g.get('next_token_logprobs').data), TOL[precision].logits, out);
    await m.zeroGrad();
    await m.backward(Float32Array.from(g.get('dlogprob').data));
    const grads = await m.grads();
    const expected = [...g.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5)).sort();
    if (Object.keys(grads).sort().join() !== expected.join()) throw new Error(`trainable tensors ${Object.keys(grads)} differ from ${expected}`);
    let worst = 0;
    for (const k of expected) {
      const err = relErr(grads[k], g.get(`grad.${k}`).data);
      worst = Math.max(worst, err);
      if (!(err < TOL[precision].grads)) throw new Error(`grad ${k}: relative error ${err}`);
    }
    out.grads_worst = worst;
    const h = JSON.parse(metadata.adamw);
    const before = await m.weights('trainable');
    await m.step({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weight_decay });
    const after = await m.weights('trainable');
    worst = 0;
    for (const k of expected) worst = Math.max(worst, relErr(after[k], adamwFirstStep(before[k], grads[k], h)));
    within('adamw', worst, 1e-6, out);

    const fresh = await open();
    const want = g.get('greedy.tokens').data;
    const prompt = Int32Array.from(g.get('greedy.prompt').data);
    const [c] = await fresh.generate({ prompts: [prompt], maxNewTokens: want.length, temperature: 0 });
    let same = 0;
    while (same < want.length && c.tokens[same] === want[same]) same++;
    out.greedy_tokens_matching = `${same}/${want.length}`;
    if (precision === 'fp32' && same !== want.length) throw new Error(`greedy tokens ${c.tokens} differ from ${want}`);
    const seq = Int32Array.from([...prompt, ...c.tokens]);
    const again = await fresh.logprobs(seq, { batch: 1, seqLen: seq.length, grad: false });
    within('generate logprobs = logprobs()', relErr(c.logprobs, again.logprobs.slice(prompt.length - 1)), TOL[precision].logits, out);
    return out;
  }

  // A Qwen2-shaped model large enough for the kernels' tiles to matter: head_dim 64, 4 query
  // heads on 2 key/value heads, a sequence length that is not a multiple of any tile.
  const config = {
    model_type: 'qwen2', vocab_size: 4099, hidden_size: 256, intermediate_size: 704, num_hidden_layers: 3,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, rope_theta: 1000000, rms_norm_eps: 1e-6,
    tie_word_embeddings: true, max_position_embeddings: 4096,
  };
  const B = 3, T = 133;
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % 4099);
  const lengths = Int32Array.from([T, 101, 40]);
  const dlogprob = Float32Array.from({ length: B * (T - 1) }, (_, i) => Math.sin(i) * 0.1);

  async function training(precision) {
    const out = {};
    const cpu = await Model.create(config, { seed: 5, threads: 2 });
    const dev = await Model.create(config, { seed: 5, device: 'cuda', precision });
    const a = await cpu.logprobs(tokens, { batch: B, seqLen: T, lengths, entropy: true });
    const b = await dev.logprobs(tokens, { batch: B, seqLen: T, lengths, entropy: true });
    within('logprobs', relErr(b.logprobs, a.logprobs), TOL[precision].logits, out);
    within('entropy', relErr(b.entropy, a.entropy), TOL[precision].logits, out);
    await cpu.backward(dlogprob);
    await dev.backward(dlogprob);
    const ga = await cpu.grads(), gb = await dev.grads();
    let worst = 0;
    for (const k of Object.keys(ga)) {
      const err = relErr(gb[k], ga[k]);
      worst = Math.max(worst, err);
      if (!(err < TOL[precision].grads)) throw new Error(`grad ${k}: relative error ${err}`);
    }
    out.grads_worst = worst;
    const na = await cpu.step({ lr: 1e-3, maxGradNorm: 0.5 });
    const nb = await dev.step({ lr: 1e-3, maxGradNorm: 0.5 });
    within('grad norm', Math.abs(nb - na) / na, TOL[precision].grads, out);
    const a2 = await cpu.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
    const b2 = await dev.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
    within('logprobs after the step', relErr(b2.logprobs, a2.logprobs), 2 * TOL[precision].logits, out);
    return out;
  }

  async function generation(precision) {
    const out = {};
    const cpu = await Model.create(config, { seed: 6, threads: 2 });
    const all = await Model.create(config, { seed: 6, device: 'cuda', precision });
    const few = await Model.create(config, { seed: 6, device: 'cuda', precision, maxSlots: 3 });
    const prompts = Array.from({ length: 9 }, (_, p) => Int32Array.from({ length: 1 + ((p * 5) % 17) }, (_, i) => (p * 31 + i * 7) % 4099));
    const greedy = { prompts, maxNewTokens: 12, temperature: 0 };
    const gc = await cpu.generate(greedy), gg = await all.generate(greedy);
    out.greedy_same_as_cpu = `${gc.filter((c, i) => c.tokens.join() === gg[i].tokens.join()).length}/${gc.length}`;
    if (precision === 'fp32' && !out.greedy_same_as_cpu.startsWith(`${gc.length}/`)) throw new Error(`greedy differs from the CPU: ${out.greedy_same_as_cpu}`);
    const sampled = { prompts, maxNewTokens: 16, temperature: 0.8, topP: 0.9, topK: 40, seed: 3, n: 2, stopTokens: [7, 11] };
    const sa = await all.generate(sampled), sf = await few.generate(sampled);
    if (sf.length !== 18) throw new Error(`${sf.length} completions, expected 18`);
    for (const c of sf) {
      const last = c.tokens[c.tokens.length - 1];
      if (c.finishReason === 'stop' ? ![7, 11].includes(last) : c.tokens.length !== 16) throw new Error(`completion ends wrongly: ${c.finishReason} ${c.tokens}`);
    }
    out.batching_same = `${sa.filter((c, i) => c.tokens.join() === sf[i].tokens.join()).length}/${sa.length}`;
    if (precision === 'fp32') {
      // No split-K in fp32 mode and attention is per row: the order rows run in cannot matter.
      if (!out.batching_same.startsWith(`${sa.length}/`)) throw new Error(`continuous batching changed the samples: ${out.batching_same}`);
      const sc = await cpu.generate(sampled);
      const same = sc.filter((c, i) => c.tokens.join() === sa[i].tokens.join()).length;
      out.sampled_same_as_cpu = `${same}/${sc.length}`;
      if (same < sc.length - 2) throw new Error(`sampling differs from the CPU: ${out.sampled_same_as_cpu}`);
    }
    return out;
  }

  async function adapters(precision) {
    const out = {};
    const cpu = await Model.create(config, { seed: 8, threads: 2 });
    const dev = await Model.create(config, { seed: 8, device: 'cuda', precision });
    for (const m of [cpu, dev]) {
      await m.addAdapters({ r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj', 'down_proj'], useDora: true, seed: 1 });
      await m.logprobs(tokens, { batch: B, seqLen: T, lengths });
      await m.backward(dlogprob);
    }
    const ga = await cpu.grads(), gb = await dev.grads();
    let worst = 0;
    for (const k of Object.keys(ga)) {
      if (!ga[k].some((x) => x !== 0)) continue;  // B starts at zero, so A's gradient does too
      const err = relErr(gb[k], ga[k]);
      worst = Math.max(worst, err);
      if (!(err < TOL[precision].grads)) throw new Error(`adapter grad ${k}: relative error ${err}`);
    }
    out.adapter_grads_worst = worst;
    await cpu.step({ lr: 1e-2 });
    await dev.step({ lr: 1e-2 });
    const other = await Model.create(config, { seed: 99, device: 'cuda', precision });
    await other.importWeights(await dev.exportWeights());
    const x = await dev.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
    const y = await other.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
    within('export / import', relErr(y.logprobs, x.logprobs), TOL[precision].logits / 4, out);
    await dev.mergeAdapters();
    const z = await dev.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
    within('merged', relErr(z.logprobs, x.logprobs), TOL[precision].logits / 4, out);
    return out;
  }

  return { fixture, training, generation, adapters };
}

async function cli() {
  const engine = require('../../dist/index.js');
  const devices = engine.cudaDevices();
  if (devices.count === 0) {
    console.error(`parity.js needs a CUDA device: ${devices.reason ?? 'none found'}`);
    process.exit(2);
  }
  const dir = process.argv[2] ?? process.env.TEMPER_FIXTURES ?? path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'fixtures');
  const c = checks(engine);
  const runs = [];
  for (const p of ['fp32', 'bf16']) {
    for (const f of fixtureNames(dir)) runs.push([`fixture ${f} ${p}`, () => c.fixture(path.join(dir, f), p)]);
    runs.push([`random model training ${p}`, () => c.training(p)]);
    runs.push([`random model generation ${p}`, () => c.generation(p)]);
    runs.push([`random model adapters ${p}`, () => c.adapters(p)]);
  }
  if (fixtureNames(dir).length === 0) console.log(`no fixtures in ${dir}: fixture checks not run`);
  let failed = 0;
  for (const [name, run] of runs) {
    try {
      console.log(`PASS ${name} ${JSON.stringify(await run())}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.message}`);
    }
  }
  console.log(failed ? `${failed} of ${runs.length} parity checks failed` : `all ${runs.length} parity checks passed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { checks, fixtureNames, TOL };
if (require.main === module) cli();
