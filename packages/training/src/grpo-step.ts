// One GRPO optimisation step on the engine: log-probs of the batch under the policy (and
// the frozen reference), the clipped surrogate and its gradient in TypeScript, the engine's
// backward and AdamW. Micro-batches accumulate gradients; `numIterations` (μ) passes reuse
// the batch with the rollout-time log-probs as the old policy.
import { KlEstimator, LossAggregation, microBatches, policyLoss, RatioLevel, TrainingBatch } from '@temper/algorithms';
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
  const first = { loss: 0, clipped: 0, kl: 0, ratio: 0, entropy: 0 };
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
      const out = policyLoss({
        n: mb.n,
        t: mb.seqLen - 1,
        logprobs,
        oldLogprobs: mb.oldLogprobs,
        refLogprobs: refLogprobs?.[i],
        mask: mb.mask,
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
        const tokens = sum(mb.mask);
        const share = whole.tokens ? tokens / whole.tokens : 0;
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
  };
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
