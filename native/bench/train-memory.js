#!/usr/bin/env node
// Peak memory and time of one training pass (logprobs, then backward with every row weighted) on
// the Qwen2.5-0.5B shape with random weights, for each way the engine can hold it:
//   unchunked  the head computes the logits of every row in one chunk (as before chunking)
//   chunked    the engine's head chunks (a 128 MiB budget of logits)
//   recompute  chunked, and each layer's activations recomputed in backward
// Each mode runs in its own process, one after another (peak resident memory is per process), so
// the figures are side by side in one run; compare them as ratios, the machine being shared.
//   node native/bench/train-memory.js [--batch 4] [--seq 512] [--layers 24] [--modes unchunked,chunked,recompute] [--step] [--json]
// peak_mb: the process's peak resident memory (VmHWM); base_mb: resident after the model is made;
// step_mb = peak_mb - base_mb, what the training pass itself held (gradients included).
// --step: a whole training step in its steady state instead: one AdamW step on a 2 x 8 batch
// first, so the gradients and both moments exist, then logprobs, backward and step on the batch;
// base_mb is then resident with all of that state, and state_mb = 16 bytes per parameter
// (weights, gradients, two moments), peak_over_state = peak_mb / state_mb (issue 16's target: < 1.5).
'use strict';
const { option, statusMib } = require('./common');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

async function child(mode, batch, seq, layers, step) {
  const { Model, MODEL_PRESETS } = require(path.join(__dirname, '..', 'dist', 'index.js'));
  const config = { ...MODEL_PRESETS['qwen2.5-0.5b'].config, num_hidden_layers: layers };
  const n = batch * seq;
  const training = { unchunked: { headChunkRows: n }, chunked: {}, recompute: { recompute: true } }[mode];
  if (!training) throw new Error(`unknown mode ${mode}`);
  const model = await Model.create(config, { seed: 1, threads: 2, ...training });
  const tokens = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % config.vocab_size);
  if (step) {
    await model.logprobs(tokens.subarray(0, 16), { batch: 2, seqLen: 8 });
    await model.backward(new Float32Array(14).fill(-1 / 14));
    await model.step({ lr: 1e-5 });
    await model.zeroGrad();
  }
  const base = statusMib('VmRSS');
  const t0 = process.hrtime.bigint();
  await model.logprobs(tokens, { batch, seqLen: seq });
  const t1 = process.hrtime.bigint();
  await model.backward(new Float32Array(batch * (seq - 1)).fill(1 / (batch * (seq - 1))));
  const t2 = process.hrtime.bigint();
  if (step) await model.step({ lr: 1e-5 });
  const peak = statusMib('VmHWM');
  const grads = await model.grads();
  let sum = 0;
  for (const g of Object.values(grads)) for (let i = 0; i < g.length; i += 4099) sum += g[i];
  const state = step ? (16 * Object.values(grads).reduce((k, g) => k + g.length, 0)) / 2 ** 20 : null;
  return {
    mode,
    ...(step ? { state_mb: Math.round(state), peak_over_state: Number((peak / state).toFixed(3)) } : {}),
    base_mb: Math.round(base),
    peak_mb: Math.round(peak),
    step_mb: Math.round(peak - base),
    logprobs_s: Number(t1 - t0) / 1e9,
    backward_s: Number(t2 - t1) / 1e9,
    grad_probe: sum,
  };
}

function main() {
  const batch = Number(option('--batch', 4));
  const seq = Number(option('--seq', 512));
  const layers = Number(option('--layers', 24));
  const modes = option('--modes', 'unchunked,chunked,recompute').split(',');
  if (process.argv.includes('--child')) {
    child(option('--child'), batch, seq, layers, process.argv.includes('--step')).then(
      (r) => process.stdout.write(JSON.stringify(r) + '\n'),
      (e) => {
        process.stderr.write(`${e.stack ?? e}\n`);
        process.exit(1);
      },
    );
    return;
  }
  const results = [];
  for (const mode of modes) {
    const args = [path.join(__dirname, 'train-memory.js'), '--child', mode, '--batch', `${batch}`, '--seq', `${seq}`, '--layers', `${layers}`];
    if (process.argv.includes('--step')) args.push('--step');
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`mode ${mode} failed: ${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()));
    process.stderr.write(`${JSON.stringify(results[results.length - 1])}\n`);  // as each finishes: a long run
  }
  const out = { shape: 'qwen2.5-0.5b', batch, seq, layers, threads: 2, results };
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  for (const r of results) {
    process.stdout.write(
      `${r.mode.padEnd(10)} peak ${r.peak_mb} MB (model ${r.base_mb} MB + step ${r.step_mb} MB), ` +
        `logprobs ${r.logprobs_s.toFixed(1)} s, backward ${r.backward_s.toFixed(1)} s\n`,
    );
  }
}

main();
