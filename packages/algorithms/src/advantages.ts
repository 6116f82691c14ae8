// Group-relative advantages: every completion of a prompt is judged against its siblings,
// so no value network is needed. Rewards come in group order (G per prompt).

export type AdvantageEstimator = 'grpo' | 'dr_grpo' | 'rloo' | 'batch_std';

/** Added to standard deviations so a group (or batch) of equal rewards gives 0, not NaN. */
export const STD_EPS = 1e-4;

/**
 * grpo:      (r - group mean) / (group std + eps), std with Bessel's correction
 * dr_grpo:   r - group mean (Dr. GRPO: no std scaling, which biases towards easy/hard prompts)
 * rloo:      r - mean of the other G-1 rewards of the group (leave-one-out baseline)
 * batch_std: (r - group mean) / (std of all rewards in the batch + eps)
 *
 * `groups` are the batch's groups, each its completions' rewards (sizes may differ); the
 * result has one array of advantages per group, in order.
 */
export function batchAdvantages(groups: ArrayLike<number>[], estimator: AdvantageEstimator): Float64Array[] {
  const all = estimator === 'batch_std' ? groups.flatMap((g) => Array.from(g)) : [];
  const batchScale = estimator === 'batch_std' ? 1 / (sampleStd(all, 0, all.length) + STD_EPS) : 1;
  return groups.map((rewards, gi) => {
    const size = rewards.length;
    if (estimator === 'rloo' && size < 2) throw new Error(`group ${gi}: rloo needs groups of at least 2`);
    const mean = sum(rewards, 0, size) / size;
    const scale = estimator === 'grpo' ? 1 / (sampleStd(rewards, 0, size) + STD_EPS) : batchScale;
    const out = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      out[i] = estimator === 'rloo' ? rewards[i] - (mean * size - rewards[i]) / (size - 1) : (rewards[i] - mean) * scale;
    }
    return out;
  });
}

/** batchAdvantages over rewards laid out group after group, `groupSize` each. */
export function groupAdvantages(rewards: ArrayLike<number>, groupSize: number, estimator: AdvantageEstimator): Float64Array {
  const n = rewards.length;
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new Error(`groupSize must be a positive integer (got ${groupSize})`);
  if (n % groupSize !== 0) throw new Error(`${n} rewards do not split into groups of ${groupSize}`);
  if (estimator === 'rloo' && groupSize < 2) throw new Error('rloo needs groups of at least 2');
  const groups = Array.from({ length: n / groupSize }, (_, g) => Array.from({ length: groupSize }, (_, i) => rewards[g * groupSize + i]));
  const out = new Float64Array(n);
  batchAdvantages(groups, estimator).forEach((adv, g) => out.set(adv, g * groupSize));
  return out;
}

/** Groups whose rewards are all equal carry no signal (all advantages 0): dynamic sampling drops them. */
export function isDegenerateGroup(rewards: ArrayLike<number>, start: number, groupSize: number): boolean {
  for (let i = start + 1; i < start + groupSize; i++) if (rewards[i] !== rewards[start]) return false;
  return true;
}

function sum(xs: ArrayLike<number>, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += xs[i];
  return s;
}

function sampleStd(xs: ArrayLike<number>, from: number, to: number): number {
  const n = to - from;
  if (n < 2) return 0;
  const mean = sum(xs, from, to) / n;
  let ss = 0;
  for (let i = from; i < to; i++) ss += (xs[i] - mean) ** 2;
  return Math.sqrt(ss / (n - 1));
}
