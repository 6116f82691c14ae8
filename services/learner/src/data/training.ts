// What the supervised stages (mid-training, SFT) share: where their model comes from, the
// optimizer and schedule settings with defaults, the cross-entropy step through the engine,
// and finding a stage's finished outputs in the store (so a resumed run skips them).
import { Schedule, ScheduleKind as AlgoScheduleKind } from '@temper/algorithms';
import type { CheckpointClient } from '@temper/checkpoint-client';
import { HfConfig, Model, StepOptions } from '@temper/native';
import { CheckpointManifest, LrSchedule, OptimizerSpec, ScheduleKind } from '@temper/proto';
import { createTokenizer, TokenizerSpec } from '@temper/tokenizers';
import { loadCheckpoint } from '../checkpoints';
import type { StageContext } from '../stages/context';

/** The tokenizer a run names in its model spec ("bytes" or a tokenizer.json path). */
export function tokenizerOfRun(ctx: Pick<StageContext, 'spec'>): TokenizerSpec {
  const t = ctx.spec.model?.tokenizer || 'bytes';
  return t === 'bytes' || t === 'byte' ? { kind: 'byte' } : { kind: 'huggingface', path: t };
}

export interface StartedModel {
  model: Model;
  tokenizer: TokenizerSpec;
}

/** The stage's input checkpoint, or a new model from the run's model config. */
export async function inputModel(ctx: StageContext, opts: { optimizer?: boolean; precision?: 'fp32' | 'bf16' } = {}): Promise<StartedModel> {
  if (ctx.input) {
    const loaded = await loadCheckpoint(ctx.store, ctx.input, { threads: ctx.threads, optimizer: opts.optimizer, precision: opts.precision });
    return { model: loaded.model, tokenizer: loaded.tokenizer ?? tokenizerOfRun(ctx) };
  }
  const tokenizer = tokenizerOfRun(ctx);
  const config = { ...(ctx.spec.model?.config ?? {}) } as Record<string, unknown>;
  if (Object.keys(config).length === 0) throw new Error(`stage ${ctx.stage.name}: no input checkpoint and no model.config to create a model from`);
  config.vocab_size ??= createTokenizer(tokenizer).vocabSize;
  // The engine checks the config and names what is missing or wrong.
  const model = await Model.create(config as HfConfig, { seed: Number(ctx.spec.seed), threads: ctx.threads, precision: opts.precision });
  return { model, tokenizer };
}

/** AdamW settings; zero in the message means "not set". */
export function optimizerFrom(o: OptimizerSpec | undefined, defaults: { lr: number; weightDecay: number }): Omit<StepOptions, 'lr'> & { peakLr: number } {
  return {
    peakLr: o?.lr || defaults.lr,
    beta1: o?.beta1 || 0.9,
    beta2: o?.beta2 || 0.95,
    eps: o?.eps || 1e-8,
    weightDecay: o?.weightDecay || defaults.weightDecay,
    maxGradNorm: o?.maxGradNorm || 1,
  };
}

const kinds: Record<ScheduleKind, AlgoScheduleKind | undefined> = {
  [ScheduleKind.SCHEDULE_KIND_UNSPECIFIED]: undefined,
  [ScheduleKind.SCHEDULE_KIND_CONSTANT]: 'constant',
  [ScheduleKind.SCHEDULE_KIND_LINEAR]: 'linear',
  [ScheduleKind.SCHEDULE_KIND_COSINE]: 'cosine',
  [ScheduleKind.SCHEDULE_KIND_WARMUP_STABLE_DECAY]: 'warmup_stable_decay',
  [ScheduleKind.UNRECOGNIZED]: undefined,
};

/** A schedule over `steps` optimizer steps; linear and cosine decay over all of them unless told. */
export function scheduleFrom(s: LrSchedule | undefined, peakLr: number, steps: number, defaultKind: AlgoScheduleKind): Schedule {
  const kind = kinds[s?.kind ?? ScheduleKind.SCHEDULE_KIND_UNSPECIFIED] ?? defaultKind;
  const warmupSteps = Number(s?.warmupSteps ?? 0);
  return {
    kind,
    peakLr,
    warmupSteps,
    stableSteps: Number(s?.stableSteps ?? 0),
    decaySteps: Number(s?.decaySteps ?? 0) || (kind === 'linear' || kind === 'cosine' ? Math.max(1, steps - warmupSteps) : 0),
    minLrRatio: s?.minLrRatio ?? 0,
    decayShape: s?.decayShape === 'linear' ? 'linear' : 'cosine',
  };
}

export interface CrossEntropy {
  /** Mean negative log-likelihood over the target tokens. */
  loss: number;
  targets: number;
}

/**
 * d(-mean log p)/d log p as the engine's gradients for a batch of rows (earlier gradients are
 * cleared first: the engine accumulates until told otherwise). `lossMask[b, t]` is 1
 * where token t of row b is a target (predicted from the tokens before it); the engine's
 * log-prob t-1 is that prediction. Rows are right-padded to `seqLen`, `lengths` their real length.
 */
export async function crossEntropyBackward(
  model: Model,
  batch: { tokens: Int32Array; lossMask: Uint8Array; batch: number; seqLen: number; lengths?: Int32Array },
): Promise<CrossEntropy> {
  const { tokens, lossMask, batch: rows, seqLen, lengths } = batch;
  const { logprobs } = await model.logprobs(tokens, { batch: rows, seqLen, lengths });
  const width = seqLen - 1;
  const grad = new Float32Array(rows * width);
  let targets = 0;
  for (let b = 0; b < rows; b++) for (let t = 1; t < seqLen; t++) targets += lossMask[b * seqLen + t];
  await model.zeroGrad();
  if (targets === 0) return { loss: 0, targets: 0 };
  let nll = 0;
  for (let b = 0; b < rows; b++) {
    for (let t = 1; t < seqLen; t++) {
      if (!lossMask[b * seqLen + t]) continue;
      const i = b * width + t - 1;
      nll -= logprobs[i];
      grad[i] = -1 / targets;
    }
  }
  await model.backward(grad);
  return { loss: nll / targets, targets };
}

/** A finished output of a stage (labels.final = "true"), by branch, if the run has one. */
export async function findFinal(store: CheckpointClient, runId: string, stage: string, branch: string): Promise<CheckpointManifest | undefined> {
  const { checkpoints } = await store.list({ runId, stage });
  return checkpoints.filter((c) => c.branch === branch && c.labels.final === 'true').sort((a, b) => b.step - a.step)[0];
}
