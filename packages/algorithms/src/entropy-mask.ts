// Entropy-based token masking ("high-entropy minority tokens", the 80/20 result): the
// policy gradient trains only on the completion tokens whose next-token entropy is in the
// top `topQuantile` share of the tokens seen together, the "forks" where the model chooses;
// the confident rest keeps its place in the loss's normaliser but contributes no gradient.
//
// The threshold is the (1 - topQuantile) quantile of the masked tokens' entropies with linear
// interpolation (torch.quantile's default); tokens at or above it train. topQuantile = 1
// keeps every token.

export interface EntropyMask {
  /** [N, T]: 1 where the token's policy term trains, 0 elsewhere (and wherever mask = 0). */
  keep: Float64Array;
  threshold: number;
  /** Share of the masked tokens kept. */
  keptFraction: number;
}

export function highEntropyMask(entropy: ArrayLike<number>, mask: ArrayLike<number>, topQuantile: number): EntropyMask {
  if (entropy.length !== mask.length) throw new Error(`entropy mask: entropy has ${entropy.length} values, mask ${mask.length}`);
  if (!(topQuantile > 0 && topQuantile <= 1)) throw new Error(`top_entropy_quantile must be in (0, 1] (got ${topQuantile})`);
  const values: number[] = [];
  for (let j = 0; j < mask.length; j++) if (mask[j]) values.push(entropy[j]);
  const threshold = topQuantile >= 1 || values.length === 0 ? -Infinity : quantile(values, 1 - topQuantile);
  const keep = new Float64Array(mask.length);
  let kept = 0;
  for (let j = 0; j < mask.length; j++) {
    if (mask[j] && entropy[j] >= threshold) {
      keep[j] = 1;
      kept++;
    }
  }
  return { keep, threshold, keptFraction: values.length ? kept / values.length : 0 };
}

/** The q-quantile of the values, linearly interpolated between the two nearest ranks. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
