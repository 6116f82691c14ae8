#!/usr/bin/env node
// Engine benchmark (`--device cuda`: see cuda.js; `--shape <preset>`, a released model's shape
// beside PyTorch eager on the CPU: see shape.js). CPU (issue: vocab 8192, hidden 512, intermediate 1408, 8 layers, 8 heads, 4 kv heads,
// tied head, fp32, 2 threads). Prints one JSON object with --json, a readable summary otherwise.
//   train: batch 8 x 256 tokens, logprobs + backward + AdamW step     -> train_tokens_per_s, train_mfu
//   generate: 16 prompts x 32 tokens, 128 new, temperature 1, top-p 0.95 -> gen_tokens_per_s
//   sgemm_gflops: OpenBLAS sgemm kernels on a 2048^3 product over the same 2 threads, in this run
// train_mfu = (6 * matmul parameters * tokens + 12 * layers * heads * head_dim * seqLen * tokens) / time / sgemm rate
// Every figure is the best of a few repetitions (training steps 4, generation 3; sgemm 14, spread
// before, between and after the training steps): the machine is shared, and the best run is the
// least disturbed, for the GEMM rate as for the engine.
//
// Two builds side by side: `--compare <native dir>` (another checkout's native/, built, with its
// dist/) runs this benchmark in child processes, this build and that one alternately
// (`--rounds`, default 3, each one process per build), and prints both builds' best figures and
// their ratios (this / that). `--addon <native dir>` runs one benchmark on that build.
// `--precision bf16` runs this build with bf16 weights (default fp32); with --compare it applies
// to this build's runs only, so `--compare <this native dir> --precision bf16` puts bf16 beside fp32.
'use strict';
const { option, seconds, randomTokens } = require('./common');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { Model, setThreads, sgemm } = require(path.resolve(option('--addon') ?? path.join(__dirname, '..'), 'dist', 'index.js'));

const THREADS = 2;
const config = {
  model_type: 'llama',
  vocab_size: 8192,
  hidden_size: 512,
  intermediate_size: 1408,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  tie_word_embeddings: true,
  max_position_embeddings: 4096,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
};

const G = 2048;
const gemmA = new Float32Array(G * G).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
const gemmB = new Float32Array(G * G).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
let sgemmBest = 0;

/** Updates sgemmBest with `reps` timed 2048^3 products. */
function sgemmRate(reps) {
  for (let r = 0; r < reps; r++) {
    const t = process.hrtime.bigint();
    sgemm(gemmA, gemmB, G, G, G);
    sgemmBest = Math.max(sgemmBest, (2 * G ** 3) / seconds(t) / 1e9);
  }
}

/**
 * Alternates child runs of this build and `other` (this, other, this, other, ...), so both see the
 * same machine; returns each build's best figures over its runs and the ratios this / other.
 */
function compare(other, rounds, precision) {
  const builds = { this: path.join(__dirname, '..'), other: path.resolve(other) };
  const runs = { this: [], other: [] };
  for (let r = 0; r < rounds; r++) {
    for (const [side, dir] of Object.entries(builds)) {
      const args = [path.join(__dirname, 'engine.js'), '--json', '--addon', dir, ...(side === 'this' && precision ? ['--precision', precision] : [])];
      const run = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (run.status !== 0) throw new Error(`the ${side} build's run failed:\n${run.stderr}`);
      runs[side].push(JSON.parse(run.stdout.trim().split('\n').pop()));
    }
  }
  const figures = ['sgemm_gflops', 'train_tokens_per_s', 'train_mfu', 'gen_tokens_per_s'];
  const best = (side) => ({
    dir: builds[side],
    ...Object.fromEntries(figures.map((k) => [k, Math.max(...runs[side].map((x) => x[k]))])),
    train_phases_s: runs[side].reduce((a, b) => (b.train_step_s < a.train_step_s ? b : a)).train_phases_s,
    runs: runs[side].map((x) => Object.fromEntries(figures.map((k) => [k, x[k]]))),
  });
  const result = { timing: `${rounds} alternating runs per build, each the best of its own repetitions`, this: best('this'), other: best('other') };
  result.ratio = Object.fromEntries(figures.map((k) => [k, +(result.this[k] / result.other[k]).toFixed(3)]));
  return result;
}

async function main() {
  const json = process.argv.includes('--json');
  if (option('--compare')) {
    const result = compare(option('--compare'), Number(option('--rounds') ?? 3), option('--precision'));
    console.log(json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
    return;
  }
  if (option('--shape')) return require('./shape.js').main(option('--shape'), json);
  const device = option('--device') ?? 'cpu';
  if (device === 'cuda') return require('./cuda.js').main(json, !process.argv.includes('--no-torch'));
  if (device !== 'cpu') throw new Error(`--device must be cpu or cuda (got ${device})`);
  setThreads(THREADS);
  sgemm(gemmA, gemmB, G, G, G);
  sgemmRate(3);
  const precision = option('--precision') ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision must be fp32 or bf16 (got ${precision})`);
  // fp32 is left to the default, so a build from before CPU precisions runs too.
  const model = await Model.create(config, { seed: 1, threads: THREADS, ...(precision === 'bf16' ? { precision } : {}) });

  const B = 8, T = 256, steps = 4;
  const tokens = randomTokens(B * T, config.vocab_size, 7);
  const dlogprob = new Float32Array(B * (T - 1)).fill(-1 / (B * (T - 1)));
  // Times of [logprobs, backward, AdamW + zeroGrad] for one step.
  const trainStep = async () => {
    const t0 = process.hrtime.bigint();
    await model.logprobs(tokens, { batch: B, seqLen: T });
    const t1 = process.hrtime.bigint();
    await model.backward(dlogprob);
    const t2 = process.hrtime.bigint();
    await model.step({ lr: 1e-4, weightDecay: 0.01, maxGradNorm: 1 });
    await model.zeroGrad();
    return [t1 - t0, t2 - t1, process.hrtime.bigint() - t2].map((d) => Number(d) / 1e9);
  };
  await trainStep();
  let best = [Infinity];
  for (let i = 0; i < steps; i++) {
    const phases = await trainStep();
    sgemmRate(2);
    if (phases.reduce((a, b) => a + b) < best.reduce((a, b) => a + b)) best = phases;
  }
  const train_step_s = best.reduce((a, b) => a + b);

  const C = config.hidden_size, F = config.intermediate_size, L = config.num_hidden_layers, H = config.num_attention_heads;
  const D = C / H, KV = config.num_key_value_heads;
  const matmulParams = L * (C * D * (2 * H + 2 * KV) + 3 * C * F) + config.vocab_size * C;
  const flops = 6 * matmulParams * B * T + 12 * L * H * D * T * B * T;
  const train_tokens_per_s = (B * T) / train_step_s;

  const prompts = Array.from({ length: 16 }, (_, i) => randomTokens(32, config.vocab_size, 100 + i));
  const sampling = { prompts, maxNewTokens: 128, temperature: 1, topP: 0.95, seed: 3 };
  await model.generate({ ...sampling, maxNewTokens: 8 });
  let gen_s = Infinity;
  let generated = 0;
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    const out = await model.generate(sampling);
    gen_s = Math.min(gen_s, seconds(t));
    generated = out.reduce((s, c) => s + c.tokens.length, 0);
  }
  sgemmRate(3);
  const sgemm_gflops = sgemmBest;
  const train_mfu = flops / train_step_s / (sgemm_gflops * 1e9);
  const result = {
    config: `vocab 8192, hidden 512, inter 1408, 8 layers, 8 heads, 4 kv heads, tied, ${precision}`,
    threads: THREADS,
    timing: 'best of 14 (sgemm), 4 (train step), 3 (generate)',
    sgemm_gflops: +sgemm_gflops.toFixed(1),
    train_batch: `${B}x${T}`,
    train_step_s: +train_step_s.toFixed(3),
    train_phases_s: { logprobs: +best[0].toFixed(3), backward: +best[1].toFixed(3), adamw: +best[2].toFixed(3) },
    train_tokens_per_s: +train_tokens_per_s.toFixed(1),
    train_tflop_per_step: +(flops / 1e12).toFixed(4),
    train_mfu: +train_mfu.toFixed(3),
    gen_tokens: generated,
    gen_s: +gen_s.toFixed(3),
    gen_tokens_per_s: +(generated / gen_s).toFixed(1),
  };
  if (json) console.log(JSON.stringify(result));
  else for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(22)} ${v}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
