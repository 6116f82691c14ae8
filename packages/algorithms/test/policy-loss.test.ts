import { KlEstimator, LossAggregation, policyLoss, PolicyLossInput, RatioLevel } from '@temper/algorithms';

// A small deterministic generator so the cases are varied but repeatable.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function randomInput(seed: number, level: RatioLevel, aggregation: LossAggregation, kl: KlEstimator): PolicyLossInput {
  const r = rng(seed);
  const n = 4;
  const t = 6;
  const lp = Array.from({ length: n * t }, () => -0.1 - 2 * r());
  return {
    n,
    t,
    logprobs: lp,
    // Small rollout-time differences so some ratios fall inside and some outside the clip range.
    oldLogprobs: lp.map((x) => x + (r() - 0.5) * 0.6),
    refLogprobs: lp.map((x) => x + (r() - 0.5) * 0.4),
    mask: Array.from({ length: n * t }, (_, j) => (j % t < 2 + ((j / t) | 0) ? 1 : 0)),
    advantages: Array.from({ length: n }, () => (r() - 0.5) * 2),
    epsLow: 0.2,
    epsHigh: 0.28,
    beta: 0.05,
    klEstimator: kl,
    level,
    aggregation,
    maxCompletionLength: t,
  };
}

describe('policyLoss gradient', () => {
  const combos: [RatioLevel, LossAggregation, KlEstimator][] = [];
  for (const level of ['token', 'sequence'] as const)
    for (const agg of ['grpo', 'bnpo', 'dr_grpo'] as const) for (const kl of ['k1', 'k2', 'k3'] as const) combos.push([level, agg, kl]);

  it.each(combos)('matches central finite differences (%s, %s, %s)', (level, agg, kl) => {
    const input = randomInput(combos.findIndex((c) => c[0] === level && c[1] === agg && c[2] === kl) + 1, level, agg, kl);
    const { dlogprobs } = policyLoss(input);
    const h = 1e-6;
    for (let j = 0; j < input.n * input.t; j++) {
      const plus = Array.from(input.logprobs);
      const minus = Array.from(input.logprobs);
      plus[j] += h;
      minus[j] -= h;
      const fd = (policyLoss({ ...input, logprobs: plus }).loss - policyLoss({ ...input, logprobs: minus }).loss) / (2 * h);
      // Where a ratio sits exactly on a clip boundary the loss has a kink; random inputs avoid it.
      expect(Math.abs(dlogprobs[j] - fd)).toBeLessThan(1e-6);
      if (!input.mask[j]) expect(dlogprobs[j]).toBe(0);
    }
  });

  it('is the negative advantage-weighted mean when on-policy and without KL', () => {
    const out = policyLoss({
      n: 2,
      t: 2,
      logprobs: [-1, -2, -1, -3],
      oldLogprobs: [-1, -2, -1, -3],
      mask: [1, 1, 1, 0],
      advantages: [1, -2],
      epsLow: 0.2,
      epsHigh: 0.2,
      beta: 0,
      level: 'token',
      aggregation: 'grpo',
      maxCompletionLength: 2,
    });
    expect(out.loss).toBeCloseTo(-(1 + -2) / 2, 12);
    expect(Array.from(out.dlogprobs)).toEqual([-0.25, -0.25, 1, 0]);
    expect(out.clipFraction).toBe(0);
    expect(out.meanRatio).toBe(1);
  });

  it('counts clipped tokens and gives them no policy gradient', () => {
    const out = policyLoss({
      n: 1,
      t: 2,
      logprobs: [0, 0],
      oldLogprobs: [-1, 0], // ratio e ≈ 2.72 on the first token: clipped for a positive advantage
      mask: [1, 1],
      advantages: [1],
      epsLow: 0.2,
      epsHigh: 0.2,
      beta: 0,
      level: 'token',
      aggregation: 'bnpo',
      maxCompletionLength: 2,
    });
    expect(out.clipFraction).toBe(0.5);
    expect(out.dlogprobs[0]).toBe(0);
    expect(out.dlogprobs[1]).toBeCloseTo(-0.5, 12);
  });

  it('names the offending input', () => {
    const base = randomInput(1, 'token', 'grpo', 'k3');
    expect(() => policyLoss({ ...base, mask: [1] })).toThrow(/mask has 1 values, expected n\*t = 24/);
    expect(() => policyLoss({ ...base, refLogprobs: undefined })).toThrow(/refLogprobs is required when beta != 0/);
    expect(() => policyLoss({ ...base, advantages: [1] })).toThrow(/advantages has 1 values/);
  });
});
