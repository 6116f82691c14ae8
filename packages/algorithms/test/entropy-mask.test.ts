// Entropy-based token masking against thresholds worked out by hand.
import { highEntropyMask, quantile } from '@temper/algorithms';

describe('highEntropyMask', () => {
  // Four completion tokens with entropies 0.1, 0.5, 0.9, 0.3, and a prompt position (mask 0)
  // of high entropy that must neither count nor be kept.
  const entropy = [0.1, 0.5, 0.9, 0.3, 5];
  const mask = [1, 1, 1, 1, 0];

  it('keeps the top half: at or above the median 0.4 (between 0.3 and 0.5)', () => {
    const m = highEntropyMask(entropy, mask, 0.5);
    expect(m.threshold).toBeCloseTo(0.4, 12);
    expect(Array.from(m.keep)).toEqual([0, 1, 1, 0, 0]);
    expect(m.keptFraction).toBe(0.5);
  });

  it('keeps the top quarter: at or above the 0.75 quantile 0.6', () => {
    const m = highEntropyMask(entropy, mask, 0.25);
    expect(m.threshold).toBeCloseTo(0.6, 12);
    expect(Array.from(m.keep)).toEqual([0, 0, 1, 0, 0]);
    expect(m.keptFraction).toBe(0.25);
  });

  it('keeps every completion token at 1, and refuses a share outside (0, 1]', () => {
    const m = highEntropyMask(entropy, mask, 1);
    expect(Array.from(m.keep)).toEqual([1, 1, 1, 1, 0]);
    expect(m.keptFraction).toBe(1);
    expect(() => highEntropyMask(entropy, mask, 0)).toThrow(/top_entropy_quantile must be in \(0, 1\]/);
    expect(() => highEntropyMask(entropy, [1], 0.5)).toThrow(/entropy has 5 values, mask 1/);
  });

  it('interpolates quantiles linearly between ranks', () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 1 / 3)).toBeCloseTo(2, 12);
    expect(quantile([7], 0.9)).toBe(7);
  });
});
