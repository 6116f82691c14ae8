// A full-weight GRPO stage's KL reference: the stage's step-0 checkpoint as a second model, only
// ever asked for log-probs, so it is frozen; in bf16 its projections then hold bf16 values alone.
import type { Model } from '@temper/native';
import { loadCheckpoint } from '../checkpoints';
import type { StageContext } from '../stages/context';

export async function loadReference(ctx: StageContext, checkpointId: string, precision: 'fp32' | 'bf16'): Promise<Model> {
  const { model } = await loadCheckpoint(ctx.store, checkpointId, { threads: ctx.threads, precision });
  await model.freeze();
  return model;
}
