// The clipped policy-gradient surrogate of the GRPO family, with its gradient with respect
// to the per-token log-probs: exactly what the learner hands to the engine's backward().
//
// Per token t of sequence i (mask m[i,t] = 1 on completion tokens):
//   ratio   ρ = exp(logp - old)                       (level "token")
//           ρ = exp(Σ_t m·(logp - old) / Σ_t m)       (level "sequence", GSPO; same for all t)
//   policy  l = -min(ρ·A_i, clip(ρ, 1-ε_low, 1+ε_high)·A_i)
//           l ← w·l with a per-token weight w when given (importance weights of the
//           rollout/training mismatch, entropy masking: constants, not differentiated)
//   kl      β·k(logp, ref)                            k1 = logp - ref, k2 = ½(logp - ref)²,
//                                                      k3 = exp(ref - logp) - (ref - logp) - 1
// Aggregation over tokens (names as in TRL, veRL's loss_agg_mode in brackets):
//   grpo    (seq-mean-token-mean)      mean_i  Σ_t m·l / Σ_t m
//   bnpo    (token-mean)               Σ_{i,t} m·l / Σ_{i,t} m
//   dr_grpo (seq-mean-token-sum-norm)  Σ_{i,t} m·l / (N · max_completion_length)

export type LossAggregation = 'grpo' | 'bnpo' | 'dr_grpo';
export type RatioLevel = 'token' | 'sequence';
export type KlEstimator = 'k1' | 'k2' | 'k3';

export interface PolicyLossInput {
  /** Sequences N and token positions T; every array below is row-major [N, T]. */
  n: number;
  t: number;
  logprobs: ArrayLike<number>;
  /** Log-probs under the policy that sampled the tokens (rollout time). */
  oldLogprobs: ArrayLike<number>;
  /** Log-probs under the frozen reference policy; needed when beta > 0. */
  refLogprobs?: ArrayLike<number>;
  mask: ArrayLike<number>;
  /**
   * [N, T]: a constant weight on each token's policy term (not on its KL term); default 1.
   * A token of weight 0 still counts in the aggregation's normaliser, as in TRL.
   */
  policyWeights?: ArrayLike<number>;
  /** One advantage per sequence. */
  advantages: ArrayLike<number>;
  epsLow: number;
  epsHigh: number;
  beta: number;
  klEstimator?: KlEstimator;
  level: RatioLevel;
  aggregation: LossAggregation;
  /** The generation limit, for dr_grpo's constant normaliser. */
  maxCompletionLength: number;
  /**
   * When these n sequences are one micro-batch of a larger batch: that batch's sequence and
   * masked-token counts, so that the micro-batch losses (and gradients) add up to the loss
   * of the whole batch. Default: this call is the whole batch.
   */
  batch?: { sequences: number; tokens: number };
}

export interface PolicyLossOutput {
  loss: number;
  /** d loss / d logprobs, [N, T], zero where masked out. */
  dlogprobs: Float64Array;
  /** Share of masked tokens whose ratio was clipped out of the gradient. */
  clipFraction: number;
  /** Mean KL estimate over masked tokens (0 without a reference). */
  kl: number;
  /** Mean importance ratio over masked tokens. */
  meanRatio: number;
}

export function policyLoss(p: PolicyLossInput): PolicyLossOutput {
  checkInput(p);
  const { n, t, logprobs: lp, oldLogprobs: old, mask, advantages: adv, epsLow, epsHigh, beta } = p;
  const kl = klFunctions(p.klEstimator ?? 'k3');
  const weights = aggregationWeights(p);
  const dlogprobs = new Float64Array(n * t);
  let loss = 0;
  let clipped = 0;
  let klSum = 0;
  let ratioSum = 0;
  let tokens = 0;

  for (let i = 0; i < n; i++) {
    const row = i * t;
    const A = adv[i];
    // GSPO: one ratio per sequence from the mean log-ratio over its tokens.
    let seqRatio = 0;
    let seqCount = 0;
    if (p.level === 'sequence') {
      let s = 0;
      for (let j = row; j < row + t; j++) {
        if (!mask[j]) continue;
        s += lp[j] - old[j];
        seqCount++;
      }
      seqRatio = Math.exp(seqCount ? s / seqCount : 0);
    }
    // dl/dρ for the sequence ratio, accumulated over the sequence's tokens (each token's
    // loss depends on it), then spread back to the tokens through dρ/dlogp.
    let dSeqRatio = 0;
    for (let j = row; j < row + t; j++) {
      if (!mask[j]) continue;
      const w = weights[i];
      const pw = p.policyWeights ? p.policyWeights[j] : 1;
      const ratio = p.level === 'token' ? Math.exp(lp[j] - old[j]) : seqRatio;
      const clippedRatio = Math.min(Math.max(ratio, 1 - epsLow), 1 + epsHigh);
      const unclippedTerm = ratio * A;
      const clippedTerm = clippedRatio * A;
      // The gradient flows through ρ unless the clipped branch is the smaller one and ρ
      // sits outside the trust region (then the token contributes no policy gradient).
      const passes = unclippedTerm <= clippedTerm || ratio === clippedRatio;
      if (!passes) clipped++;
      let tokenLoss = -pw * Math.min(unclippedTerm, clippedTerm);
      const dldRatio = passes ? -pw * A : 0;
      if (p.level === 'token') dlogprobs[j] += w * dldRatio * ratio;
      else dSeqRatio += w * dldRatio;
      if (beta !== 0) {
        const k = kl.value(lp[j], p.refLogprobs![j]);
        tokenLoss += beta * k;
        dlogprobs[j] += w * beta * kl.grad(lp[j], p.refLogprobs![j]);
        klSum += k;
      }
      loss += w * tokenLoss;
      ratioSum += ratio;
      tokens++;
    }
    if (p.level === 'sequence' && seqCount) {
      // dρ/dlogp_t = ρ · m_t / Σ m
      const d = (dSeqRatio * seqRatio) / seqCount;
      for (let j = row; j < row + t; j++) if (mask[j]) dlogprobs[j] += d;
    }
  }
  return {
    loss,
    dlogprobs,
    clipFraction: tokens ? clipped / tokens : 0,
    kl: tokens ? klSum / tokens : 0,
    meanRatio: tokens ? ratioSum / tokens : 0,
  };
}

// The weight of one masked token of sequence i in the aggregated loss.
function aggregationWeights(p: PolicyLossInput): Float64Array {
  const w = new Float64Array(p.n);
  const counts = new Float64Array(p.n);
  let total = 0;
  for (let i = 0; i < p.n; i++) {
    for (let j = i * p.t; j < (i + 1) * p.t; j++) if (p.mask[j]) counts[i]++;
    total += counts[i];
  }
  const sequences = p.batch?.sequences ?? p.n;
  const tokens = p.batch?.tokens ?? total;
  for (let i = 0; i < p.n; i++) {
    if (p.aggregation === 'grpo') w[i] = counts[i] ? 1 / (sequences * counts[i]) : 0;
    else if (p.aggregation === 'bnpo') w[i] = tokens ? 1 / tokens : 0;
    else w[i] = 1 / (sequences * p.maxCompletionLength);
  }
  return w;
}

function klFunctions(estimator: KlEstimator): { value(lp: number, ref: number): number; grad(lp: number, ref: number): number } {
  switch (estimator) {
    case 'k1':
      return { value: (lp, ref) => lp - ref, grad: () => 1 };
    case 'k2':
      return { value: (lp, ref) => 0.5 * (lp - ref) ** 2, grad: (lp, ref) => lp - ref };
    case 'k3':
      return { value: (lp, ref) => Math.exp(ref - lp) - (ref - lp) - 1, grad: (lp, ref) => 1 - Math.exp(ref - lp) };
  }
}

function checkInput(p: PolicyLossInput): void {
  const size = p.n * p.t;
  const arrays: [string, ArrayLike<number> | undefined][] = [
    ['logprobs', p.logprobs],
    ['oldLogprobs', p.oldLogprobs],
    ['mask', p.mask],
  ];
  if (p.beta !== 0) arrays.push(['refLogprobs', p.refLogprobs]);
  if (p.policyWeights) arrays.push(['policyWeights', p.policyWeights]);
  for (const [name, a] of arrays) {
    if (!a) throw new Error(`${name} is required${name === 'refLogprobs' ? ' when beta != 0' : ''}`);
    if (a.length !== size) throw new Error(`${name} has ${a.length} values, expected n*t = ${size}`);
  }
  if (p.advantages.length !== p.n) throw new Error(`advantages has ${p.advantages.length} values, expected one per sequence (${p.n})`);
  if (p.aggregation === 'dr_grpo' && !(p.maxCompletionLength > 0)) throw new Error('maxCompletionLength must be > 0 for dr_grpo');
  if (!(p.epsLow >= 0 && p.epsHigh >= 0)) throw new Error('epsLow and epsHigh must be >= 0');
}
