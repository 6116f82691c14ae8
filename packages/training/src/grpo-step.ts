// One GRPO optimisation step on the engine: log-probs of the batch under the policy (and
// the frozen reference), the clipped surrogate and its gradient in TypeScript, the engine's
// backward and AdamW. Micro-batches accumulate gradients; `numIterations` (μ) passes reuse
// the batch with the rollout-time log-probs as the old policy.
//
// The first pass also measures the rollout/training mismatch (rollout-time against
// training-time log-probs of the same tokens). With importance sampling on, the old policy of
// the clipped ratio becomes the training-time log-probs of the first pass, and the
// mismatch goes into truncated importance weights on each token's policy term instead. With
// entropy masking, the first pass's entropies choose the tokens that train, for every pass.
import {
  combineMismatch,
  highEntropyMask,
  ImportanceSamplingMode,
  importanceWeights,
  KlEstimator,
  LogprobMismatch,
  logprobMismatch,
  LossAggregation,
  MicroBatch,
  microBatches,
  policyLoss,
  RatioLevel,
  TrainingBatch,
} from '@temper/algorithms';
import type { Model, StepOptions } from '@temper/native';

export interface GrpoLossConfig {
  epsLow: number;
  epsHigh: number;
  beta: number;
  klEstimator: KlEstimator;
  level: RatioLevel;
  aggregation: LossAggregation;
  /** The generation limit (Dr. GRPO's constant normaliser). */
  maxCompletionLength: number;
  numIterations: number;
  microBatchSize: number;
  /** Truncated importance sampling of the rollout/training mismatch; off when absent. */
  importanceSampling?: { mode: ImportanceSamplingMode; cap: number };
  /** Train the policy term only on this top share of each micro-batch's tokens by entropy; 1 (or absent) is every token. */
  topEntropyQuantile?: number;
}

export interface GrpoStepMetrics {
  /** Loss of the first pass (μ = 1 is the on-policy loss). */
  loss: number;
  /** Pre-clip gradient norm of the last pass. */
  gradNorm: number;
  clipFraction: number;
  kl: number;
  /** Mean next-token entropy over completion tokens. */
  entropy: number;
  meanRatio: number;
  trainedTokens: number;
  /** Rollout-time against training-time log-probs of the trained tokens, before the update. */
  mismatch: LogprobMismatch;
  /** With importance sampling: the mean weight and the share of tokens the cap truncated or masked. */
  importanceWeight?: { mean: number; cappedFraction: number };
  /** With entropy masking: the share of trained tokens whose policy term was kept. */
  entropyKeptFraction?: number;
}

/** Reference log-probs for the whole batch, one array per micro-batch (the reference never changes). */
export async function referenceLogprobs(reference: Model, batch: TrainingBatch, microBatchSize: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const mb of microBatches(batch, microBatchSize)) {
    out.push((await reference.logprobs(mb.tokens, { batch: mb.n, seqLen: mb.seqLen, lengths: mb.lengths, grad: false })).logprobs);
  }
  return out;
}

export async function grpoStep(
  policy: Model,
  batch: TrainingBatch,
  cfg: GrpoLossConfig,
  optimizer: StepOptions,
  refLogprobs?: Float32Array[],
): Promise<GrpoStepMetrics> {
  if (cfg.beta !== 0 && !refLogprobs) throw new Error('kl beta > 0 needs reference log-probs');
  const mbs = microBatches(batch, cfg.microBatchSize);
  const whole = { sequences: batch.n, tokens: batch.maskedTokens };
  const first = { loss: 0, clipped: 0, kl: 0, ratio: 0, entropy: 0, isWeight: 0, isCapped: 0, kept: 0 };
  const mismatches: LogprobMismatch[] = [];
  // Per micro-batch, fixed by the first pass: the old log-probs of the ratio and the weights of the policy terms.
  const olds: ArrayLike<number>[] = mbs.map((mb) => mb.oldLogprobs);
  const policyWeights: (Float64Array | undefined)[] = [];
  let gradNorm = 0;
  for (let pass = 0; pass < Math.max(1, cfg.numIterations); pass++) {
    await policy.zeroGrad();
    for (const [i, mb] of mbs.entries()) {
      const { logprobs, entropy } = await policy.logprobs(mb.tokens, {
        batch: mb.n,
        seqLen: mb.seqLen,
        lengths: mb.lengths,
        entropy: pass === 0,
      });
      const tokens = sum(mb.mask);
      const share = whole.tokens ? tokens / whole.tokens : 0;
      if (pass === 0) {
        mismatches.push(logprobMismatch(logprobs, mb.oldLogprobs, mb.mask));
        const weights = firstPassWeights(cfg, mb, logprobs, entropy!);
        if (weights.importance) {
          olds[i] = logprobs.slice();
          first.isWeight += weights.importance.meanWeight * share;
          first.isCapped += weights.importance.cappedFraction * share;
        }
        if (weights.entropy) first.kept += weights.entropy.keptFraction * share;
        policyWeights.push(weights.combined);
      }
      const out = policyLoss({
        n: mb.n,
        t: mb.seqLen - 1,
        logprobs,
        oldLogprobs: olds[i],
        refLogprobs: refLogprobs?.[i],
        mask: mb.mask,
        policyWeights: policyWeights[i],
        advantages: mb.advantages,
        epsLow: cfg.epsLow,
        epsHigh: cfg.epsHigh,
        beta: cfg.beta,
        klEstimator: cfg.klEstimator,
        level: cfg.level,
        aggregation: cfg.aggregation,
        maxCompletionLength: cfg.maxCompletionLength,
        batch: whole,
      });
      await policy.backward(Float32Array.from(out.dlogprobs));
      if (pass === 0) {
        // Per-micro-batch means weighted by their share of the batch's trained tokens.
        first.loss += out.loss;
        first.clipped += out.clipFraction * share;
        first.kl += out.kl * share;
        first.ratio += out.meanRatio * share;
        first.entropy += tokens ? (maskedSum(entropy!, mb.mask) / tokens) * share : 0;
      }
    }
    gradNorm = await policy.step(optimizer);
  }
  return {
    loss: first.loss,
    gradNorm,
    clipFraction: first.clipped,
    kl: first.kl,
    entropy: first.entropy,
    meanRatio: first.ratio,
    trainedTokens: whole.tokens,
    mismatch: combineMismatch(mismatches),
    importanceWeight: cfg.importanceSampling ? { mean: first.isWeight, cappedFraction: first.isCapped } : undefined,
    entropyKeptFraction: entropyMasking(cfg) ? first.kept : undefined,
  };
}

const entropyMasking = (cfg: GrpoLossConfig) => cfg.topEntropyQuantile !== undefined && cfg.topEntropyQuantile < 1;

/** The weights of a micro-batch's policy terms: importance weights times the entropy mask (undefined: all 1). */
function firstPassWeights(cfg: GrpoLossConfig, mb: MicroBatch, trainLogprobs: Float32Array, entropy: Float32Array) {
  const t = mb.seqLen - 1;
  const importance = cfg.importanceSampling
    ? importanceWeights({ n: mb.n, t, trainLogprobs, rolloutLogprobs: mb.oldLogprobs, mask: mb.mask, ...cfg.importanceSampling })
    : undefined;
  const kept = entropyMasking(cfg) ? highEntropyMask(entropy, mb.mask, cfg.topEntropyQuantile!) : undefined;
  let combined = importance?.weights;
  if (kept) {
    combined = combined ?? new Float64Array(kept.keep.length).fill(1);
    for (let j = 0; j < combined.length; j++) combined[j] *= kept.keep[j];
  }
  return { importance, entropy: kept, combined };
}

function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}

function maskedSum(xs: ArrayLike<number>, mask: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) if (mask[i]) s += xs[i];
  return s;
}
