// Train / held-out split by a hash of the canonical problem (the math, without names, wording,
// difficulty or seed). Two items that pose the same problem land in the same split wherever
// and however they were generated, so evaluation never measures a memorised training problem.
import { hashString } from './rng';

export type Split = 'train' | 'eval';

/** Share of problems held out for evaluation unless a caller says otherwise. */
export const defaultHeldOutFraction = 0.2;

// A salt keeps this hash independent of the other uses of hashString (seeds, ids).
const splitSalt = 'temper-split-v1\u0000';
const buckets = 10000;

/** The bucket in [0, 10000) a canonical problem falls in; eval takes the lowest buckets. */
export function splitBucket(canonical: string): number {
  return hashString(splitSalt + canonical) % buckets;
}

/**
 * The split of a problem. Eval is the buckets below fraction * 10000, train the rest; so a
 * train set drawn with fraction f and an eval set drawn with any fraction <= f are still
 * disjoint (a smaller eval fraction only shrinks the eval side).
 */
export function splitOf(canonical: string, heldOutFraction = defaultHeldOutFraction): Split {
  if (!(heldOutFraction > 0 && heldOutFraction < 1)) throw new RangeError(`heldOutFraction must be in (0, 1), got ${heldOutFraction}`);
  return splitBucket(canonical) < Math.round(heldOutFraction * buckets) ? 'eval' : 'train';
}
