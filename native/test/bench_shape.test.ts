// bench:engine --shape: the figures rest on parameter counts and a PyTorch reference doing the
// engine's work, so both are checked against the real engine on a small Qwen2 shape, and the
// engine's phases run as the bench runs them (a child process printing JSON).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { HfConfig, Model } from '@temper/native';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bench = require('../bench/shape.js') as {
  counts(c: HfConfig): { total: number; matmul: number; small: number; loraPerRank: number; L: number; H: number; KV: number; D: number };
  trainFlops(n: ReturnType<typeof bench.counts>, p: { batch: number; seq: number; lora: number }): number;
  decodeBound(n: ReturnType<typeof bench.counts>, p: { seqs: number; prompt: number; new: number }, weightBytes: number, gbps: number): number;
  decodeFlopBound(n: ReturnType<typeof bench.counts>, p: { seqs: number; prompt: number; new: number }, gflops: number): number;
};

const config: HfConfig = {
  model_type: 'qwen2',
  vocab_size: 512,
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const sizeOf = (tensors: Record<string, Float32Array>) => Object.values(tensors).reduce((n, t) => n + t.length, 0);

function runJson(cmd: string, args: string[]): Record<string, unknown> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args[0]} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('bench:engine --shape', () => {
  const n = bench.counts(config);

  it('counts the parameters the engine has, and those LoRA adds per rank', async () => {
    const model = await Model.create(config, { seed: 1, threads: 1 });
    expect(n.total).toBe(sizeOf(await model.weights('base')));
    await model.addAdapters({ r: 4, alpha: 8, targetModules: ALL, seed: 1 });
    expect(4 * n.loraPerRank).toBe(sizeOf(await model.weights('adapters')));
  });

  it('counts training FLOPs without weight gradients for LoRA, and the decode bytes per step', () => {
    const full = bench.trainFlops(n, { batch: 2, seq: 8, lora: 0 });
    const lora = bench.trainFlops(n, { batch: 2, seq: 8, lora: 4 });
    const attention = 12 * 2 * 4 * 16 * 8 * 16;
    expect(full).toBe(6 * n.matmul * 16 + attention);
    expect(lora).toBe(4 * n.matmul * 16 + 6 * 4 * n.loraPerRank * 16 + attention);
    // 3 new tokens: 2 decode steps, at contexts 5 and 6 for each of 2 sequences, fp32 KV.
    const kv = n.L * 2 * n.KV * n.D * 4;
    const bytes = 2 * 1000 + 2 * (5 + 6) * kv;
    expect(bench.decodeBound(n, { seqs: 2, prompt: 4, new: 3 }, 1000, 1)).toBeCloseTo((2 * 2) / (bytes / 1e9), 6);
    // The same steps' FLOPs: 2 per matrix parameter per token, attention 4 L H D per position.
    const flops = 2 * (2 * n.matmul * 2) + 2 * 4 * n.L * n.H * n.D * (5 + 6);
    expect(bench.decodeFlopBound(n, { seqs: 2, prompt: 4, new: 3 }, 1)).toBeCloseTo((2 * 2) / (flops / 1e9), 6);
  });

  it('runs an engine phase in its own process and reports its times and peak memory', () => {
    const phase = (p: object) => runJson(process.execPath, [path.join(__dirname, '..', 'bench', 'shape.js'), '--phase', JSON.stringify({ config, threads: 1, ...p })]);
    const train = phase({ phase: 'train', batch: 2, seq: 16, steps: 1, lora: 4, precision: 'fp32' });
    expect(train.train_step_s).toBeGreaterThan(0);
    expect(train.sgemm_gflops).toBeGreaterThan(0);
    expect(train.max_rss_bytes).toBeGreaterThan(16 * 2 ** 20);
    const gen = phase({ phase: 'generate', seqs: 2, prompt: 4, new: 48, reps: 1, lora: 0, precision: 'fp32' });
    expect(gen.tokens).toBe(96);
    // Not gen_s > prefill_s: on a tiny model both are noise-sized (the bench reports no decode figure then).
    expect(gen.prefill_s).toBeGreaterThan(0);
    expect(gen.gen_s).toBeGreaterThan(0);
  });

  // Debian's python3-torch goes into the system interpreter, which a python3 earlier on the PATH may not see.
  const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import torch']).status === 0);
  (python ? it : it.skip)('has PyTorch train the parameters the engine trains and sample every token', () => {
    const script = path.join(__dirname, '..', 'bench', 'torch_cpu.py');
    const run = (args: string[]) => runJson(python!, [script, '--config', JSON.stringify(config), '--threads', '1', ...args]);
    expect(run(['--phase', 'train', '--batch', '2', '--seq', '16', '--steps', '1']).trainable_params).toBe(n.total);
    expect(run(['--phase', 'train', '--batch', '2', '--seq', '16', '--steps', '1', '--lora', '4']).trainable_params).toBe(4 * n.loraPerRank);
    const gen = run(['--phase', 'generate', '--seqs', '2', '--prompt', '4', '--new', '6', '--reps', '1']);
    expect(gen.tokens).toBe(12);
    expect(gen.max_rss_bytes).toBeGreaterThan(0);
  });
});
