// The rollout/training mismatch: the generator's log-probs (rollout time) and the learner's
// (training time) for the same tokens can differ, through different kernels, batch shapes or
// a policy that moved on since sampling. This module measures the gap and turns it into
// per-token importance weights (truncated importance sampling, TIS) that correct the
// policy-gradient term for it.
//
// All arrays are row-major [N, T] in the engine's log-prob layout; only positions where
// mask = 1 (completion tokens that train) count.
//
// Per token t of sequence i, with Δ = logp_train - logp_rollout:
//   token level     w_t = exp(Δ_t)
//   sequence level  w_t = exp(Σ_s Δ_s) for every token of the sequence (the ratio of the
//                   sequence probabilities)
//   truncate        w ← min(w, cap)
//   mask            w ← w when w <= cap, else 0 (the token, or the whole sequence, stops training)
// The names are TRL's vllm_importance_sampling_mode values; veRL calls the same choices
// rollout_is_level (token | sequence) and rollout_is_mode (truncate | mask), with the cap as
// rollout_is_threshold.

export type ImportanceSamplingMode = 'token_truncate' | 'token_mask' | 'sequence_truncate' | 'sequence_mask';

export const IMPORTANCE_SAMPLING_MODES: readonly ImportanceSamplingMode[] = ['token_truncate', 'token_mask', 'sequence_truncate', 'sequence_mask'];

export interface LogprobMismatch {
  /** Masked tokens compared. */
  tokens: number;
  /** Mean and max of |logp_rollout - logp_train| over those tokens. */
  meanAbsDiff: number;
  maxAbsDiff: number;
  /**
   * KL(rollout ‖ train) estimated on the sampled tokens with the k3 estimator
   * exp(Δ) - Δ - 1 (Δ = logp_train - logp_rollout): non-negative and unbiased, since the
   * tokens were drawn from the rollout policy.
   */
  kl: number;
}

export function logprobMismatch(train: ArrayLike<number>, rollout: ArrayLike<number>, mask: ArrayLike<number>): LogprobMismatch {
  if (train.length !== mask.length || rollout.length !== mask.length) {
    throw new Error(`log-prob mismatch: train has ${train.length}, rollout ${rollout.length} and mask ${mask.length} values; they must agree`);
  }
  let tokens = 0;
  let absSum = 0;
  let absMax = 0;
  let klSum = 0;
  for (let j = 0; j < mask.length; j++) {
    if (!mask[j]) continue;
    const d = train[j] - rollout[j];
    tokens++;
    absSum += Math.abs(d);
    absMax = Math.max(absMax, Math.abs(d));
    klSum += Math.expm1(d) - d;
  }
  return { tokens, meanAbsDiff: tokens ? absSum / tokens : 0, maxAbsDiff: absMax, kl: tokens ? klSum / tokens : 0 };
}

/** Combines the measurements of a batch's micro-batches into the batch's. */
export function combineMismatch(parts: LogprobMismatch[]): LogprobMismatch {
  const tokens = parts.reduce((s, p) => s + p.tokens, 0);
  const weighted = (f: (p: LogprobMismatch) => number) => (tokens ? parts.reduce((s, p) => s + f(p) * p.tokens, 0) / tokens : 0);
  return { tokens, meanAbsDiff: weighted((p) => p.meanAbsDiff), maxAbsDiff: Math.max(0, ...parts.map((p) => p.maxAbsDiff)), kl: weighted((p) => p.kl) };
}

export interface ImportanceWeightsInput {
  n: number;
  t: number;
  trainLogprobs: ArrayLike<number>;
  rolloutLogprobs: ArrayLike<number>;
  mask: ArrayLike<number>;
  mode: ImportanceSamplingMode;
  /** The truncation / masking threshold C (> 0). */
  cap: number;
}

export interface ImportanceWeights {
  /** [N, T]: the weight of each token's policy-gradient term; 0 where mask = 0. */
  weights: Float64Array;
  /** Share of masked tokens whose weight the cap changed (truncated, or masked to 0). */
  cappedFraction: number;
  /** Mean weight over masked tokens, after the cap. */
  meanWeight: number;
}

export function importanceWeights(p: ImportanceWeightsInput): ImportanceWeights {
  const size = p.n * p.t;
  for (const [name, a] of [['trainLogprobs', p.trainLogprobs], ['rolloutLogprobs', p.rolloutLogprobs], ['mask', p.mask]] as const) {
    if (a.length !== size) throw new Error(`importance weights: ${name} has ${a.length} values, expected n*t = ${size}`);
  }
  if (!IMPORTANCE_SAMPLING_MODES.includes(p.mode)) throw new Error(`importance weights: unknown mode "${p.mode}" (one of ${IMPORTANCE_SAMPLING_MODES.join(', ')})`);
  if (!(p.cap > 0)) throw new Error(`importance weights: cap must be > 0 (got ${p.cap})`);
  const sequenceLevel = p.mode.startsWith('sequence');
  const masking = p.mode.endsWith('mask');
  const weights = new Float64Array(size);
  let tokens = 0;
  let capped = 0;
  let weightSum = 0;
  for (let i = 0; i < p.n; i++) {
    const row = i * p.t;
    let logSeqRatio = 0;
    if (sequenceLevel) for (let j = row; j < row + p.t; j++) if (p.mask[j]) logSeqRatio += p.trainLogprobs[j] - p.rolloutLogprobs[j];
    for (let j = row; j < row + p.t; j++) {
      if (!p.mask[j]) continue;
      const ratio = Math.exp(sequenceLevel ? logSeqRatio : p.trainLogprobs[j] - p.rolloutLogprobs[j]);
      const over = ratio > p.cap;
      const w = over ? (masking ? 0 : p.cap) : ratio;
      weights[j] = w;
      tokens++;
      if (over) capped++;
      weightSum += w;
    }
  }
  return { weights, cappedFraction: tokens ? capped / tokens : 0, meanWeight: tokens ? weightSum / tokens : 0 };
}
