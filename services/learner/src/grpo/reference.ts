// A full-weight GRPO stage's KL reference: the stage's step-0 checkpoint as a second, frozen
// model, only ever asked for log-probs. In bf16 it should hold bf16 weights alone; the engine
// drops a weight's fp32 values when adapters mark the base frozen, so the reference gets a
// rank-1 LoRA with B = 0 on every projection: it adds exactly zero to every output and makes the
// engine keep the projections as bf16 only (half their bytes).
import type { Model } from '@temper/native';
import { loadCheckpoint } from '../checkpoints';
import type { StageContext } from '../stages/context';

const allProjections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export async function loadReference(ctx: StageContext, checkpointId: string, precision: 'fp32' | 'bf16'): Promise<Model> {
  const { model } = await loadCheckpoint(ctx.store, checkpointId, { threads: ctx.threads, precision });
  if (precision === 'bf16') await model.addAdapters({ r: 1, alpha: 1, targetModules: allProjections, seed: 0 });
  return model;
}
