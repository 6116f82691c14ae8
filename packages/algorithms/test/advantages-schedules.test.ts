import { decayStart, groupAdvantages, isDegenerateGroup, learningRate, Schedule } from '@temper/algorithms';

describe('groupAdvantages', () => {
  it('gives zero advantages to a group of equal rewards, for every estimator', () => {
    for (const e of ['grpo', 'dr_grpo', 'rloo', 'batch_std'] as const) {
      expect(Array.from(groupAdvantages([1, 1, 1, 1, 0, 1, 0, 1], 4, e)).slice(0, 4)).toEqual([0, 0, 0, 0]);
    }
  });
  it('centres each group on its own mean', () => {
    expect(Array.from(groupAdvantages([0, 1, 10, 12], 2, 'dr_grpo'))).toEqual([-0.5, 0.5, -1, 1]);
    expect(Array.from(groupAdvantages([0, 1, 2], 3, 'rloo'))).toEqual([-1.5, 0, 1.5]);
  });
  it('refuses rewards that do not split into groups', () => {
    expect(() => groupAdvantages([1, 2, 3], 2, 'grpo')).toThrow(/3 rewards do not split into groups of 2/);
  });
  it('finds degenerate groups', () => {
    expect(isDegenerateGroup([1, 1, 0, 1], 0, 2)).toBe(true);
    expect(isDegenerateGroup([1, 1, 0, 1], 2, 2)).toBe(false);
  });
});

describe('learningRate', () => {
  const wsd: Schedule = { kind: 'warmup_stable_decay', peakLr: 1e-3, warmupSteps: 10, stableSteps: 80, decaySteps: 10, minLrRatio: 0.1 };

  it('warms up linearly from zero', () => {
    expect(learningRate(0, wsd)).toBe(0);
    expect(learningRate(5, wsd)).toBeCloseTo(5e-4, 15);
    expect(learningRate(10, wsd)).toBe(1e-3);
  });
  it('holds the peak through the stable phase and decays to the floor (Stable-then-Decay)', () => {
    expect(learningRate(89, wsd)).toBe(1e-3);
    expect(decayStart(wsd)).toBe(90);
    expect(learningRate(90, wsd)).toBe(1e-3);
    expect(learningRate(95, wsd)).toBeCloseTo(1e-4 + 0.9e-3 * 0.5, 15); // half-way down a cosine
    expect(learningRate(100, wsd)).toBeCloseTo(1e-4, 15);
    expect(learningRate(500, wsd)).toBeCloseTo(1e-4, 15);
    expect(learningRate(95, { ...wsd, decayShape: 'linear' })).toBeCloseTo(1e-4 + 0.9e-3 * 0.5, 15);
    expect(learningRate(92, { ...wsd, decayShape: 'linear' })).toBeCloseTo(1e-4 + 0.9e-3 * 0.8, 15);
  });
  it('decays a cosine schedule after warm-up', () => {
    const s: Schedule = { kind: 'cosine', peakLr: 2, warmupSteps: 2, decaySteps: 4 };
    expect([0, 1, 2, 4, 6, 7].map((i) => learningRate(i, s))).toEqual([0, 1, 2, expect.closeTo(1, 12), expect.closeTo(0, 12), expect.closeTo(0, 12)]);
  });
  it('keeps a constant schedule constant', () => {
    expect(learningRate(1000, { kind: 'constant', peakLr: 3e-4 })).toBe(3e-4);
  });
});
