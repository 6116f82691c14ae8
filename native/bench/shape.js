// The engine at a released model's shape beside PyTorch eager on the same CPU, in one run:
//   npm run bench:engine -- --shape qwen2.5-0.5b --json
// Random weights in the preset's shape (lib/presets.ts), fp32, 2 threads. Every phase runs in its
// own child process (engine and PyTorch alternating, so both see the same machine), and its peak
// resident memory is that process's max RSS, so one phase's peak cannot hide another's.
//
// Phases (each engine phase also times 2048^3 sgemm products before and after its work):
//   train_full       batch x seq tokens (default 8 x 512): logprobs + backward + clip + AdamW, full weights
//   train_lora       the same with LoRA r=16 (alpha 32) on all seven projections; only adapters train
//   train_lora_bf16  the engine only: the same with precision 'bf16' (bf16 base weights)
//   generate_16/_64  16 and 64 prompts x 32 tokens, 128 new each, temperature 1 over the whole vocabulary
// PyTorch (bench/torch_cpu.py, a hand-written Qwen2 in fp32) runs train_full, train_lora and both
// generate phases. Python's torch is Debian's python3-torch; when it is missing the bench installs
// it (apt-get, through `sudo -n` when not root); when that fails `torch_skipped` says why and the
// engine's figures print alone.
//
// Fields (times are the best of the repetitions after a warm-up; the machine is shared):
//   machine.sgemm_gflops     best 2048^3 sgemm over the engine phases (the addon's, same threads)
//   machine.read_gb_per_s    memory read bandwidth: bench/stream_read.c, compiled and run here,
//                            best of before and after the phases
//   <side>.load_s            create + random weights (train_full's process)
//   <side>.train_full / train_lora / train_lora_bf16:
//     train_step_s, train_phases_s {logprobs, backward, adamw}, train_tokens_per_s, train_mfu,
//     max_rss_bytes (the training process's peak, weights included)
//   <side>.generate["16"|"64"]:
//     prefill_s (generate with 1 new token), gen_s, gen_tokens_per_s (all new tokens / gen_s),
//     decode_tokens_per_s ((new-1) tokens per sequence / (gen_s - prefill_s)),
//     bound_tokens_per_s: the decode steps' bytes read / read_gb_per_s, where a step reads every
//     weight once (fp32, or bf16 matrices under --precision bf16) and each sequence's KV cache
//     (fp32) up to its position; fraction_of_bound = decode_tokens_per_s / bound_tokens_per_s
//     roofline_tokens_per_s: min(bound_tokens_per_s, the decode steps' FLOPs at sgemm_gflops), since
//     at 16+ rows a step is compute-bound: 2 x 494M x 16 FLOP per 0.5B step at ~195 GFLOP/s is
//     ~200 tokens/s, under the fp32 byte bound (~264) and far under bf16's (~530). The CPU's
//     decode products (gemm_small.cc) run FMA in fp32 for fp32 and bf16 weights alike, the
//     instruction sgemm uses, so its rate is theirs; fraction_of_roofline = decode / roofline
//   ratio                    engine / torch per figure (higher is better for rates, lower for s and bytes)
//   ahead                    per figure, whether the engine is ahead of PyTorch
//   targets                  the issue's targets as booleans (null when not measured)
// MFU: train FLOPs / step time / sgemm rate, FLOPs = 6 N tokens (full) or 4 N tokens + 6 N_lora
// tokens (LoRA: no weight gradients for the base) + 12 L H D T tokens for attention, where N
// counts the matrix-product parameters (head included).
//
// Flags: --batch --seq --steps (timed training steps, default 2) --prompt --new --gen-batches
// 16,64 --layers (fewer layers for a quick run) --lora-r 16 --precision fp32|bf16 (train_full and
// generation) --recompute (activation recomputation in training) --no-torch --python <exe> (default: python3,
// then the system's /usr/bin/python3, where Debian's package installs).
// Options an engine does not know are refused by it and reported as "n/a: <its error>".
'use strict';
const { seconds, randomTokens } = require('./common');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const THREADS = 2;
const ALL_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const G = 2048;

const round = (x, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? null : +x.toFixed(digits));

// ---------------------------------------------------------------- child: one engine phase

/** Best sgemm rate (GFLOP/s) over `reps` 2048^3 products, with the addon's BLAS on its pool. */
function sgemmMeter(sgemm) {
  const a = new Float32Array(G * G).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = new Float32Array(G * G).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  let best = 0;
  return {
    measure(reps) {
      for (let r = 0; r < reps; r++) {
        const t = process.hrtime.bigint();
        sgemm(a, b, G, G, G);
        best = Math.max(best, (2 * G ** 3) / seconds(t) / 1e9);
      }
    },
    get best() {
      return best;
    },
  };
}

/** Makes the model of a phase; an option or adapter the engine refuses comes back as { na }. */
async function makeModel(Model, p) {
  const options = { seed: 1, threads: p.threads };
  if (p.precision === 'bf16') options.precision = 'bf16';
  if (p.recompute) options.recompute = true;
  const t = process.hrtime.bigint();
  try {
    const model = await Model.create(p.config, options);
    const load_s = seconds(t);
    if (p.lora) await model.addAdapters({ r: p.lora, alpha: 2 * p.lora, targetModules: ALL_TARGETS, seed: 1 });
    return { model, load_s };
  } catch (e) {
    return { na: `n/a: ${e.message}` };
  }
}

async function trainPhase(model, p, meter) {
  const V = p.config.vocab_size;
  const tokens = randomTokens(p.batch * p.seq, V, 7);
  const dlogprob = new Float32Array(p.batch * (p.seq - 1)).fill(-1 / (p.batch * (p.seq - 1)));
  const step = async () => {
    const t0 = process.hrtime.bigint();
    await model.logprobs(tokens, { batch: p.batch, seqLen: p.seq });
    const t1 = process.hrtime.bigint();
    await model.backward(dlogprob);
    const t2 = process.hrtime.bigint();
    await model.step({ lr: 1e-5, weightDecay: 0.01, maxGradNorm: 1 });
    await model.zeroGrad();
    return [t1 - t0, t2 - t1, process.hrtime.bigint() - t2].map((d) => Number(d) / 1e9);
  };
  await step();
  let best = null;
  for (let i = 0; i < p.steps; i++) {
    const phases = await step();
    meter.measure(1);
    if (!best || phases[0] + phases[1] + phases[2] < best[0] + best[1] + best[2]) best = phases;
  }
  return {
    train_step_s: round(best[0] + best[1] + best[2]),
    train_phases_s: { logprobs: round(best[0]), backward: round(best[1]), adamw: round(best[2]) },
  };
}

async function generatePhase(model, p) {
  const prompts = Array.from({ length: p.seqs }, (_, i) => randomTokens(p.prompt, p.config.vocab_size, 100 + i));
  const run = async (maxNewTokens) => {
    const t = process.hrtime.bigint();
    const out = await model.generate({ prompts, maxNewTokens, temperature: 1, topP: 1, seed: 3 });
    const s = seconds(t);
    const tokens = out.reduce((n, c) => n + c.tokens.length, 0);
    if (tokens !== p.seqs * maxNewTokens) throw new Error(`generate gave ${tokens} tokens, expected ${p.seqs * maxNewTokens}`);
    return s;
  };
  await run(2);
  let prefill_s = Infinity;
  for (let r = 0; r < 2; r++) prefill_s = Math.min(prefill_s, await run(1));
  let gen_s = Infinity;
  for (let r = 0; r < p.reps; r++) gen_s = Math.min(gen_s, await run(p.new));
  return { prefill_s: round(prefill_s, 6), gen_s: round(gen_s, 6), tokens: p.seqs * p.new };
}

async function childPhase(p) {
  try {
    // Should memory run out, the kernel ends this process, not a neighbour's.
    fs.writeFileSync('/proc/self/oom_score_adj', '1000');
  } catch {
    // not Linux, or not allowed: nothing to lower
  }
  const { Model, setThreads, sgemm } = require('../dist/index.js');
  setThreads(p.threads);
  const meter = sgemmMeter(sgemm);
  meter.measure(3);
  const made = await makeModel(Model, p);
  if (made.na) return { na: made.na };
  const work = p.phase === 'train' ? await trainPhase(made.model, p, meter) : await generatePhase(made.model, p);
  meter.measure(2);
  return { load_s: round(made.load_s), ...work, sgemm_gflops: round(meter.best, 1), max_rss_bytes: process.resourceUsage().maxRSS * 1024 };
}

// ---------------------------------------------------------------- parent: set-up and phases

function log(line) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function lastJson(stdout) {
  const line = stdout.trim().split('\n').pop();
  return JSON.parse(line);
}

function failure(what, r) {
  if (r.error) return `${what} did not start: ${r.error.message}`;
  if (r.signal === 'SIGKILL') return `${what} was killed (SIGKILL: most likely out of memory)`;
  const tail = (r.stderr || '').trim().split('\n').slice(-3).join(' | ');
  return `${what} failed (${r.signal ?? `exit ${r.status}`}): ${tail}`;
}

/** Runs one engine phase in a child process; its JSON, { na } when refused, or { error }. */
function enginePhase(p) {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'shape.js'), '--phase', JSON.stringify(p)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return { error: failure('the engine phase', r) };
  return lastJson(r.stdout);
}

function torchPhase(python, p) {
  const script = path.join(__dirname, 'torch_cpu.py');
  const args = [script, '--phase', p.phase, '--config', JSON.stringify(p.config), '--threads', `${p.threads}`];
  if (p.phase === 'train') args.push('--batch', `${p.batch}`, '--seq', `${p.seq}`, '--steps', `${p.steps}`, '--lora', `${p.lora}`);
  else args.push('--seqs', `${p.seqs}`, '--prompt', `${p.prompt}`, '--new', `${p.new}`, '--reps', `${p.reps}`);
  const env = { ...process.env, OMP_NUM_THREADS: `${p.threads}`, MKL_NUM_THREADS: `${p.threads}` };
  const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24, env });
  if (r.status !== 0) return { error: failure('torch_cpu.py', r) };
  return lastJson(r.stdout);
}

function torchVersion(python) {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The first of `pythons` that imports torch, with torch's version; null when none does. */
function findTorch(pythons) {
  for (const python of pythons) {
    const version = torchVersion(python);
    if (version) return { python, version };
  }
  return null;
}

/**
 * A Python with PyTorch, installing Debian's python3-torch when none has it; or { skipped: why }.
 * Debian's package goes into the system interpreter's dist-packages, which a python3 earlier on
 * the PATH (pyenv, a virtualenv) does not see, so the system's is tried after it.
 */
function ensureTorch(python) {
  const pythons = python ? [python] : ['python3', '/usr/bin/python3'];
  const found = findTorch(pythons);
  if (found) return found;
  log('PyTorch is missing: installing python3-torch with apt-get');
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = (args) => {
    const [cmd, argv] = root ? ['apt-get', args] : ['sudo', ['-n', 'apt-get', ...args]];
    const r = spawnSync(cmd, argv, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return r.error ? r.error.message : r.status === 0 ? null : `apt-get ${args.join(' ')} exited ${r.signal ?? r.status}`;
  };
  let why = apt(['install', '-y', '--no-install-recommends', 'python3-torch']);
  if (why) why = apt(['update']) ?? apt(['install', '-y', '--no-install-recommends', 'python3-torch']);
  const installed = findTorch(pythons);
  if (installed) return installed;
  return { skipped: `PyTorch is not importable by ${pythons.join(' or ')} and installing python3-torch failed: ${why ?? 'installed, yet not importable'}` };
}

/** Memory read bandwidth (GB/s) from bench/stream_read.c, compiled into a temporary directory. */
function readBandwidth(mib) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-stream-'));
  try {
    const exe = path.join(dir, 'stream_read');
    const cc = process.env.CC ?? 'cc';
    const build = spawnSync(cc, ['-O3', '-march=native', '-pthread', '-o', exe, path.join(__dirname, 'stream_read.c')], { encoding: 'utf8' });
    if (build.status !== 0) throw new Error(failure(`${cc} stream_read.c`, build));
    const r = spawnSync(exe, [`${THREADS}`, `${mib}`, '5'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(failure('stream_read', r));
    return lastJson(r.stdout).read_gb_per_s;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Parameter counts of a Qwen2 / Llama config: matrix products (head included), all, per LoRA rank. */
function counts(c) {
  const C = c.hidden_size, F = c.intermediate_size, L = c.num_hidden_layers, H = c.num_attention_heads;
  const KV = c.num_key_value_heads, D = c.head_dim ?? C / H, V = c.vocab_size;
  const perLayer = C * D * (2 * H + 2 * KV) + 3 * C * F;
  const matmul = L * perLayer + V * C;
  const biases = c.model_type === 'qwen2' ? L * D * (H + 2 * KV) : 0;
  const norms = L * 2 * C + C;
  const loraPerRank = L * (C + H * D + 2 * (C + KV * D) + H * D + C + 2 * (C + F) + F + C);
  return { C, L, H, KV, D, V, matmul, total: V * C + L * perLayer + biases + norms, small: biases + norms, loraPerRank };
}

function trainFlops(n, p) {
  const tokens = p.batch * p.seq;
  const attention = 12 * n.L * n.H * n.D * p.seq * tokens;
  return p.lora ? 4 * n.matmul * tokens + 6 * n.loraPerRank * p.lora * tokens + attention : 6 * n.matmul * tokens + attention;
}

/** Tokens/s a decoder reaches when every decode step only reads its weights and KV cache at `gbps`. */
function decodeBound(n, p, weightBytes, gbps) {
  const kvPerPosition = n.L * 2 * n.KV * n.D * 4;
  let bytes = 0;
  for (let k = 1; k < p.new; k++) bytes += weightBytes + p.seqs * (p.prompt + k) * kvPerPosition;
  return (p.seqs * (p.new - 1)) / (bytes / (gbps * 1e9));
}

/**
 * Tokens/s a decoder reaches when every decode step only does its FLOPs at `gflops`: 2 per
 * matrix-product parameter per token (head included) plus attention's 4 L H D per cached position.
 */
function decodeFlopBound(n, p, gflops) {
  let flops = 0;
  for (let k = 1; k < p.new; k++) flops += p.seqs * (2 * n.matmul + 4 * n.L * n.H * n.D * (p.prompt + k));
  return (p.seqs * (p.new - 1)) / (flops / (gflops * 1e9));
}

function addTrainFigures(r, n, p, rate) {
  if (!r || r.na || r.error || r.train_step_s === undefined) return r;
  const tokens_per_s = (p.batch * p.seq) / r.train_step_s;
  return { ...r, train_tokens_per_s: round(tokens_per_s, 1), train_mfu: round(trainFlops(n, p) / r.train_step_s / (rate * 1e9)) };
}

function addGenerateFigures(r, n, p, weightBytes, gbps, gflops) {
  if (!r || r.na || r.error || r.gen_s === undefined) return r;
  // Decode time is what the whole run took beyond a prefill-only run; none left means no figure.
  const decode = r.gen_s > r.prefill_s ? (p.seqs * (p.new - 1)) / (r.gen_s - r.prefill_s) : NaN;
  const bound = decodeBound(n, p, weightBytes, gbps);
  const roofline = Math.min(bound, gflops > 0 ? decodeFlopBound(n, p, gflops) : Infinity);
  return {
    ...r,
    gen_tokens_per_s: round(r.tokens / r.gen_s, 1),
    decode_tokens_per_s: round(decode, 1),
    bound_tokens_per_s: round(bound, 1),
    fraction_of_bound: round(decode / bound),
    roofline_tokens_per_s: round(roofline, 1),
    fraction_of_roofline: round(decode / roofline),
  };
}

function parseFlags(argv) {
  const value = (name, fallback) => {
    const at = argv.indexOf(name);
    return at > 0 ? argv[at + 1] : fallback;
  };
  const int = (name, fallback) => {
    const v = Number(value(name, fallback));
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer (got ${value(name)})`);
    return v;
  };
  const precision = value('--precision', 'fp32');
  if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision must be fp32 or bf16 (got ${precision})`);
  const genBatches = value('--gen-batches', '16,64').split(',').map(Number);
  if (!genBatches.every((b) => Number.isInteger(b) && b > 0)) throw new Error(`--gen-batches must be positive integers separated by commas`);
  return {
    batch: int('--batch', 8),
    seq: int('--seq', 512),
    steps: int('--steps', 2),
    prompt: int('--prompt', 32),
    new: int('--new', 128),
    reps: int('--reps', 2),
    lora: int('--lora-r', 16),
    layers: value('--layers') === undefined ? undefined : int('--layers'),
    genBatches,
    precision,
    recompute: argv.includes('--recompute'),
    torch: !argv.includes('--no-torch'),
    python: value('--python', process.env.PYTHON),
    streamMib: int('--stream-mib', 1024),
  };
}

function ratios(engine, torch, flags) {
  const pairs = { load_s: [engine.load_s, torch.load_s, 'lower'] };
  for (const k of ['train_full', 'train_lora']) {
    pairs[`${k}.train_tokens_per_s`] = [engine[k]?.train_tokens_per_s, torch[k]?.train_tokens_per_s, 'higher'];
    pairs[`${k}.max_rss_bytes`] = [engine[k]?.max_rss_bytes, torch[k]?.max_rss_bytes, 'lower'];
  }
  for (const s of flags.genBatches) {
    pairs[`generate.${s}.gen_tokens_per_s`] = [engine.generate[s]?.gen_tokens_per_s, torch.generate[s]?.gen_tokens_per_s, 'higher'];
    pairs[`generate.${s}.decode_tokens_per_s`] = [engine.generate[s]?.decode_tokens_per_s, torch.generate[s]?.decode_tokens_per_s, 'higher'];
    pairs[`generate.${s}.max_rss_bytes`] = [engine.generate[s]?.max_rss_bytes, torch.generate[s]?.max_rss_bytes, 'lower'];
  }
  const ratio = {}, ahead = {};
  for (const [k, [e, t, better]] of Object.entries(pairs)) {
    const known = Number.isFinite(e) && Number.isFinite(t) && t > 0;
    ratio[k] = known ? round(e / t) : null;
    ahead[k] = known ? (better === 'higher' ? e > t : e < t) : null;
  }
  return { ratio, ahead };
}

function targets(engine, flags, n, ahead) {
  const mfu = (r, min) => (typeof r?.train_mfu === 'number' ? r.train_mfu >= min : null);
  const stateBytes = 16 * n.total; // fp32 weights, gradients, AdamW's two moments
  const peak = engine.train_full?.max_rss_bytes;
  const at8x512 = flags.batch === 8 && flags.seq === 512;
  const gen16 = engine.generate[16]?.fraction_of_bound;
  const aheadAll = Object.values(ahead);
  return {
    train_mfu_full_ge_0_7: mfu(engine.train_full, 0.7),
    train_mfu_lora_ge_0_5: mfu(engine.train_lora, 0.5),
    train_mfu_lora_bf16_ge_0_5: mfu(engine.train_lora_bf16, 0.5),
    generate_16_decode_ge_0_7_of_bound: typeof gen16 === 'number' ? gen16 >= 0.7 : null,
    train_peak_8x512_lt_1_5x_state: at8x512 && Number.isFinite(peak) ? peak < 1.5 * stateBytes : null,
    train_state_bytes: stateBytes,
    ahead_of_torch_every_figure: aheadAll.length > 0 && aheadAll.every((a) => a !== null) ? aheadAll.every(Boolean) : null,
  };
}

async function main(shape, json) {
  const { MODEL_PRESETS } = require('../dist/index.js');
  const preset = MODEL_PRESETS[shape];
  if (!preset) throw new Error(`--shape must be one of ${Object.keys(MODEL_PRESETS).join(', ')} (got ${shape})`);
  const flags = parseFlags(process.argv);
  const config = { ...preset.config, ...(flags.layers ? { num_hidden_layers: flags.layers } : {}) };
  const n = counts(config);
  const started = process.hrtime.bigint();

  const torchSetup = flags.torch ? ensureTorch(flags.python) : { skipped: 'skipped (--no-torch)' };
  const withTorch = !torchSetup.skipped;
  log(`read bandwidth (stream_read.c, ${flags.streamMib} MiB)`);
  const bandwidth = [readBandwidth(flags.streamMib)];

  const base = { config, threads: THREADS, recompute: flags.recompute };
  const trainP = { ...base, phase: 'train', batch: flags.batch, seq: flags.seq, steps: flags.steps };
  const plan = [
    ['train_full', { ...trainP, lora: 0, precision: flags.precision }, true],
    ['train_lora', { ...trainP, lora: flags.lora, precision: 'fp32' }, true],
    ['train_lora_bf16', { ...trainP, lora: flags.lora, precision: 'bf16' }, false],
    ...flags.genBatches.map((s) => [
      `generate_${s}`,
      { ...base, phase: 'generate', recompute: false, lora: 0, precision: flags.precision, seqs: s, prompt: flags.prompt, new: flags.new, reps: flags.reps },
      true,
    ]),
  ];
  const engineRaw = {}, torchRaw = {};
  for (const [name, p, torchToo] of plan) {
    // Each phase's raw figures go to stderr as they come: a long run cut short keeps them.
    log(`engine ${name}`);
    engineRaw[name] = enginePhase(p);
    log(`engine ${name}: ${JSON.stringify(engineRaw[name])}`);
    if (withTorch && torchToo) {
      log(`torch ${name}`);
      torchRaw[name] = torchPhase(torchSetup.python, p);
      log(`torch ${name}: ${JSON.stringify(torchRaw[name])}`);
    }
  }
  log('read bandwidth again');
  bandwidth.push(readBandwidth(flags.streamMib));

  const gbps = Math.max(...bandwidth);
  const rate = Math.max(...Object.values(engineRaw).map((r) => r.sgemm_gflops ?? 0));
  const pOf = Object.fromEntries(plan.map(([name, p]) => [name, p]));
  const side = (raw, engineSide) => {
    const out = { load_s: raw.train_full?.load_s ?? null };
    for (const k of ['train_full', 'train_lora', ...(engineSide ? ['train_lora_bf16'] : [])]) out[k] = addTrainFigures(raw[k], n, pOf[k], rate);
    out.generate = {};
    for (const s of flags.genBatches) {
      const p = pOf[`generate_${s}`];
      const matrixBytes = engineSide && p.precision === 'bf16' ? 2 : 4;
      out.generate[s] = addGenerateFigures(raw[`generate_${s}`], n, p, n.matmul * matrixBytes + n.small * 4, gbps, rate);
    }
    return out;
  };
  const engine = side(engineRaw, true);
  const torch = withTorch ? side(torchRaw, false) : null;
  const compared = torch ? ratios(engine, torch, flags) : { ratio: null, ahead: {} };
  const result = {
    shape,
    config: `${preset.repo} shape: vocab ${n.V}, hidden ${n.C}, inter ${config.intermediate_size}, ${n.L} layers, ${n.H} heads, ${n.KV} kv heads, tied; random weights, fp32`,
    params: n.total,
    threads: THREADS,
    train_batch: `${flags.batch}x${flags.seq}`,
    generate: `${flags.genBatches.join(' and ')} prompts x ${flags.prompt} tokens, ${flags.new} new, temperature 1`,
    precision: flags.precision,
    recompute: flags.recompute,
    timing: `best of ${flags.steps} training steps and ${flags.reps} generate runs after a warm-up; each phase its own process`,
    machine: { sgemm_gflops: round(rate, 1), read_gb_per_s: round(gbps, 2) },
    engine,
    torch,
    torch_version: torchSetup.version ?? null,
    torch_skipped: torchSetup.skipped ?? null,
    ratio: compared.ratio,
    ahead: compared.ahead,
    targets: targets(engine, flags, n, compared.ahead),
    wall_s: round(seconds(started), 1),
  };
  if (json) console.log(JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
}

// counts, trainFlops, decodeBound and decodeFlopBound are exported for test/bench_shape.test.ts.
module.exports = { main, counts, trainFlops, decodeBound, decodeFlopBound };

if (require.main === module) {
  const at = process.argv.indexOf('--phase');
  if (at < 0) {
    console.error('bench/shape.js runs through engine.js: npm run bench:engine -- --shape <preset>');
    process.exit(2);
  }
  childPhase(JSON.parse(process.argv[at + 1]))
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
