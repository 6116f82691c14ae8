// The engine's CUDA benchmark (`npm run bench:engine -- --device cuda [--json] [--no-torch]`),
// on a Qwen2-0.5B-shaped model with random weights, side by side with PyTorch in the same run:
//   train: batch 8 x 1024 tokens, logprobs + backward + AdamW (bf16 products, fp32 master weights)
//     -> tokens/s, and MFU against the card's bf16 matrix rate measured by torch_ref.py
//   generate: 64 and 256 sequences in flight, 32-token prompts, 128 new tokens each, temperature 1
//     -> tokens/s, against the memory-bandwidth bound (every step reads the bf16 weights and the
//        sequences' cached keys and values once; bandwidth measured by torch_ref.py)
// torch_ref.py runs first (then exits, freeing the GPU), so both see the same machine.
'use strict';
const { seconds, randomTokens } = require('./common');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Model, cudaDevices } = require('../dist/index.js');

const config = {
  model_type: 'qwen2',
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};
const B = 8, T = 1024, STEPS = 3, PROMPT = 32, NEW = 128, IN_FLIGHT = [64, 256];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function torchReference() {
  const script = path.join(__dirname, 'torch_ref.py');
  const args = [script, '--config', JSON.stringify(config), '--batch', `${B}`, '--seq', `${T}`, '--steps', `${STEPS}`,
    '--prompt', `${PROMPT}`, '--new', `${NEW}`, '--seqs', IN_FLIGHT.join(',')];
  const r = spawnSync(process.env.PYTHON ?? 'python3', args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) return { error: `torch_ref.py failed (${r.status ?? r.error?.message}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}` };
  const last = r.stdout.trim().split('\n').pop();
  return JSON.parse(last);
}

async function main(json, withTorch) {
  const devices = cudaDevices();
  if (devices.count === 0) throw new Error(`bench --device cuda needs a CUDA device: ${devices.reason ?? 'none found'}`);
  const torch = withTorch ? torchReference() : { error: 'skipped (--no-torch)' };

  const C = config.hidden_size, F = config.intermediate_size, L = config.num_hidden_layers;
  const H = config.num_attention_heads, KV = config.num_key_value_heads, D = C / H, V = config.vocab_size;
  const matmulParams = L * (C * D * (2 * H + 2 * KV) + 3 * C * F) + V * C;
  const flops = 6 * matmulParams * B * T + 12 * L * H * D * T * B * T;

  const model = await Model.create(config, { seed: 1, device: 'cuda' });
  const tokens = randomTokens(B * T, V, 7);
  const dlogprob = new Float32Array(B * (T - 1)).fill(-1 / (B * (T - 1)));
  const phases = [];
  for (let i = 0; i <= STEPS; i++) {
    const t0 = process.hrtime.bigint();
    await model.logprobs(tokens, { batch: B, seqLen: T });
    const t1 = process.hrtime.bigint();
    await model.backward(dlogprob);
    const t2 = process.hrtime.bigint();
    await model.step({ lr: 1e-5, weightDecay: 0.01, maxGradNorm: 1 });
    await model.zeroGrad();
    if (i > 0) phases.push([t1 - t0, t2 - t1, process.hrtime.bigint() - t2].map((d) => Number(d) / 1e9));
  }
  const step_s = median(phases.map((p) => p[0] + p[1] + p[2]));
  const mid = phases.find((p) => p[0] + p[1] + p[2] === step_s);

  const weightBytes = 2 * (matmulParams + L * C * 2 + C);
  const gen = {};
  for (const S of IN_FLIGHT) {
    const prompts = Array.from({ length: S }, (_, i) => randomTokens(PROMPT, V, 100 + i));
    const sampling = { prompts, maxNewTokens: NEW, temperature: 1, seed: 3 };
    await model.generate({ ...sampling, maxNewTokens: 4 });
    const times = [];
    let produced = 0;
    for (let r = 0; r < 2; r++) {
      const t = process.hrtime.bigint();
      const out = await model.generate(sampling);
      times.push(seconds(t));
      produced = out.reduce((s, c) => s + c.tokens.length, 0);
    }
    const s = median(times);
    // Bytes a perfect decoder reads: the weights once per step, each sequence's cache once per step.
    let bytes = 0;
    for (let k = 0; k < NEW; k++) bytes += weightBytes + S * (PROMPT + k) * L * 2 * KV * D * 2;
    const boundTps = torch.copy_tb_per_s ? (S * NEW) / (bytes / (torch.copy_tb_per_s * 1e12)) : null;
    gen[S] = {
      s: +s.toFixed(3),
      tokens: produced,
      tokens_per_s: +(produced / s).toFixed(1),
      bandwidth_bound_tokens_per_s: boundTps && +boundTps.toFixed(1),
      fraction_of_bound: boundTps && +((produced / s) / boundTps).toFixed(3),
      vs_torch: torch.generate ? +((produced / s) / torch.generate[S].tokens_per_s).toFixed(2) : null,
    };
  }

  const rate = torch.bf16_matmul_tflops ? torch.bf16_matmul_tflops * 1e12 : null;
  const result = {
    device: model.device,
    config: 'Qwen2-0.5B shape: vocab 151936, hidden 896, inter 4864, 24 layers, 14 heads, 2 kv heads, tied; random weights',
    train_batch: `${B}x${T}`,
    train_step_s: +step_s.toFixed(4),
    train_phases_s: { logprobs: +mid[0].toFixed(4), backward: +mid[1].toFixed(4), adamw: +mid[2].toFixed(4) },
    train_tokens_per_s: +((B * T) / step_s).toFixed(1),
    train_tflop_per_step: +(flops / 1e12).toFixed(3),
    train_mfu: rate && +(flops / step_s / rate).toFixed(3),
    train_vs_torch: torch.train_step_s ? +(torch.train_step_s / step_s).toFixed(2) : null,
    torch_train_mfu: rate && torch.train_step_s ? +(flops / torch.train_step_s / rate).toFixed(3) : null,
    generate: gen,
    targets: 'train_mfu >= 0.4; generate vs_torch >= 3',
    torch,
  };
  if (json) console.log(JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
}

module.exports = { main };
