// The rollout/training mismatch and its truncated importance weights, against values worked
// out by hand.
import { combineMismatch, importanceWeights, ImportanceSamplingMode, logprobMismatch, policyLoss } from '@temper/algorithms';

describe('logprobMismatch', () => {
  it('measures |Δ| and the k3 KL over masked tokens only', () => {
    // Δ = train - rollout = 0.1, 0, -0.2 on the masked tokens; the unmasked one differs by 5.
    const m = logprobMismatch([-1, -2, -0.5, 0], [-1.1, -2, -0.3, -5], [1, 1, 1, 0]);
    expect(m.tokens).toBe(3);
    expect(m.meanAbsDiff).toBeCloseTo(0.1, 12);
    expect(m.maxAbsDiff).toBeCloseTo(0.2, 12);
    // (e^0.1 - 1 - 0.1 + e^-0.2 - 1 + 0.2 + 0) / 3
    expect(m.kl).toBeCloseTo((0.005170918075647624 + 0.0187307530779818) / 3, 12);
  });

  it('is exactly 0 for identical log-probs and combines micro-batches by their token counts', () => {
    expect(logprobMismatch([-1, -2], [-1, -2], [1, 1])).toEqual({ tokens: 2, meanAbsDiff: 0, maxAbsDiff: 0, kl: 0 });
    const c = combineMismatch([
      { tokens: 1, meanAbsDiff: 0.4, maxAbsDiff: 0.4, kl: 0.1 },
      { tokens: 3, meanAbsDiff: 0.2, maxAbsDiff: 0.3, kl: 0.02 },
    ]);
    expect(c.tokens).toBe(4);
    expect(c.meanAbsDiff).toBeCloseTo((0.4 + 0.6) / 4, 12);
    expect(c.maxAbsDiff).toBe(0.4);
    expect(c.kl).toBeCloseTo((0.1 + 0.06) / 4, 12);
    expect(combineMismatch([])).toEqual({ tokens: 0, meanAbsDiff: 0, maxAbsDiff: 0, kl: 0 });
  });

  it('refuses arrays of different lengths', () => {
    expect(() => logprobMismatch([0, 0], [0], [1, 1])).toThrow(/train has 2, rollout 1 and mask 2/);
  });
});

describe('importanceWeights', () => {
  // Two sequences of 3 positions. Token ratios p_train / p_rollout: sequence 0: 2, 4 (its
  // third position is not a completion token); sequence 1: 0.5, 1.5, 2.5. Cap 3.
  const ratios = [2, 4, 7, 0.5, 1.5, 2.5];
  const rollout = [-1, -2, -3, -1, -2, -3];
  const input = {
    n: 2,
    t: 3,
    rolloutLogprobs: rollout,
    trainLogprobs: rollout.map((x, j) => x + Math.log(ratios[j])),
    mask: [1, 1, 0, 1, 1, 1],
    cap: 3,
  };
  const cases: [ImportanceSamplingMode, number[], number, number][] = [
    // mode, weights, share capped, mean weight
    ['token_truncate', [2, 3, 0, 0.5, 1.5, 2.5], 1 / 5, 9.5 / 5],
    ['token_mask', [2, 0, 0, 0.5, 1.5, 2.5], 1 / 5, 6.5 / 5],
    // Sequence ratios: 2·4 = 8 (over the cap) and 0.5·1.5·2.5 = 1.875.
    ['sequence_truncate', [3, 3, 0, 1.875, 1.875, 1.875], 2 / 5, 11.625 / 5],
    ['sequence_mask', [0, 0, 0, 1.875, 1.875, 1.875], 2 / 5, 5.625 / 5],
  ];
  it.each(cases)('%s', (mode, weights, capped, mean) => {
    const out = importanceWeights({ ...input, mode });
    expect(out.weights).toHaveLength(6);
    weights.forEach((w, j) => expect(out.weights[j]).toBeCloseTo(w, 12));
    expect(out.cappedFraction).toBeCloseTo(capped, 12);
    expect(out.meanWeight).toBeCloseTo(mean, 12);
  });

  it('names what is wrong with its input', () => {
    expect(() => importanceWeights({ ...input, mode: 'token_clip' as ImportanceSamplingMode })).toThrow(/unknown mode "token_clip"/);
    expect(() => importanceWeights({ ...input, mode: 'token_mask', cap: 0 })).toThrow(/cap must be > 0/);
    expect(() => importanceWeights({ ...input, mode: 'token_mask', mask: [1] })).toThrow(/mask has 1 values, expected n\*t = 6/);
  });
});

describe('policyLoss with per-token policy weights', () => {
  it('weights each token\'s policy term, not its KL term', () => {
    // On-policy (ratio 1), advantage 1, grpo aggregation over 2 tokens: l_t = -w_t / 2.
    const base = { n: 1, t: 2, logprobs: [-1, -2], oldLogprobs: [-1, -2], mask: [1, 1], advantages: [1], epsLow: 0.2, epsHigh: 0.2, level: 'token' as const, aggregation: 'grpo' as const, maxCompletionLength: 2 };
    const weighted = policyLoss({ ...base, beta: 0, policyWeights: [0.5, 2] });
    expect(weighted.loss).toBeCloseTo(-1.25, 12);
    expect(Array.from(weighted.dlogprobs)).toEqual([-0.25, -1]);
    // k1 KL to a reference 0.5 below: β·(logp - ref) per token, gradient β/2 each, unweighted.
    const withKl = policyLoss({ ...base, beta: 0.1, klEstimator: 'k1', refLogprobs: [-1.5, -2.5], policyWeights: [0.5, 0] });
    expect(withKl.loss).toBeCloseTo(-0.25 + 0.1 * 0.5, 12);
    expect(withKl.dlogprobs[0]).toBeCloseTo(-0.25 + 0.05, 12);
    expect(withKl.dlogprobs[1]).toBeCloseTo(0.05, 12);
    expect(() => policyLoss({ ...base, beta: 0, policyWeights: [1] })).toThrow(/policyWeights has 1 values, expected n\*t = 2/);
  });

  it('still matches finite differences off-policy, at the sequence level too', () => {
    for (const level of ['token', 'sequence'] as const) {
      const input = {
        n: 2, t: 3, level, aggregation: 'bnpo' as const, beta: 0.05, klEstimator: 'k3' as const, epsLow: 0.2, epsHigh: 0.28, maxCompletionLength: 3,
        logprobs: [-1, -1.2, -0.7, -2, -0.4, -1.1],
        oldLogprobs: [-1.05, -1.1, -0.72, -1.9, -0.45, -1.2],
        refLogprobs: [-1.1, -1.3, -0.6, -2.1, -0.5, -1],
        mask: [1, 1, 0, 1, 1, 1],
        advantages: [0.7, -0.4],
        policyWeights: [0.8, 1.7, 0, 0, 1.2, 0.3],
      };
      const { dlogprobs } = policyLoss(input);
      const h = 1e-6;
      for (let j = 0; j < 6; j++) {
        const at = (d: number) => policyLoss({ ...input, logprobs: input.logprobs.map((x, k) => (k === j ? x + d : x)) }).loss;
        expect(Math.abs(dlogprobs[j] - (at(h) - at(-h)) / (2 * h))).toBeLessThan(1e-6);
      }
    }
  });
});
