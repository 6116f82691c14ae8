// From scored prompt groups to what the engine trains on: right-padded token sequences,
// the mask of completion positions in the engine's log-prob layout, rollout-time log-probs
// and one advantage per sequence, split into micro-batches whose losses add up to the
// batch's.
//
// Layout: a sequence is prompt ++ completion, padded to seqLen. The engine's logprobs() row
// has seqLen-1 entries, entry t = log p(token[t+1] | tokens[..t]); completion token k sits at
// position P+k, so its log-prob is entry P+k-1 (P = prompt length).
//
// A multi-turn completion holds the environment's tokens between the model's turns; its loss
// mask says which tokens are the model's. Only those enter the mask here (and so the loss):
// the others are context the model was conditioned on, not choices it made.
import { AdvantageEstimator, batchAdvantages, isDegenerateGroup } from './advantages';

export interface SampledCompletion {
  tokenIds: ArrayLike<number>;
  /** Log-prob of each completion token under the policy that sampled it. */
  logprobs: ArrayLike<number>;
  /** 'length' when the generation limit cut it off. */
  finishReason: 'stop' | 'length' | 'aborted';
  /** Per token: 1 for the model's own, 0 for the environment's (multi-turn). Absent or empty: all the model's. */
  lossMask?: ArrayLike<number>;
}

export interface ScoredPromptGroup {
  promptIds: ArrayLike<number>;
  completions: SampledCompletion[];
  /** Total reward of each completion, in completion order. */
  rewards: number[];
}

export interface BatchOptions {
  /**
   * How advantages are computed from the groups' rewards. batch_std takes its std over every
   * reward of the groups given: the batch. Groups dropped before (dynamic sampling drops those
   * whose rewards are all equal, in the learner) are not in the batch and do not count; groups
   * of equal rewards that are given count, and get advantage 0.
   */
  estimator: AdvantageEstimator;
  /** Mask out completions cut off by the generation limit (overlong filtering). */
  filterOverlong: boolean;
  padId: number;
}

export interface TrainingBatch {
  n: number;
  seqLen: number;
  /** [n, seqLen] right-padded. */
  tokens: Int32Array;
  /** Real length of each sequence. */
  lengths: Int32Array;
  /** [n, seqLen-1]: 1 at completion-token positions that train. */
  mask: Float32Array;
  /** [n, seqLen-1]: rollout-time log-probs at completion positions, 0 elsewhere. */
  oldLogprobs: Float32Array;
  advantages: Float64Array;
  /** Masked positions in the whole batch. */
  maskedTokens: number;
  /** Longest completion in the batch (Dr. GRPO's constant uses the generation limit instead). */
  maxCompletionTokens: number;
  /** degenerateGroups: groups whose rewards are all equal (advantage 0 throughout). */
  stats: { groups: number; degenerateGroups: number; overlongCompletions: number };
}

export function buildTrainingBatch(groups: ScoredPromptGroup[], opts: BatchOptions): TrainingBatch {
  let degenerate = 0;
  let overlong = 0;
  for (const [gi, g] of groups.entries()) {
    if (g.rewards.length !== g.completions.length) {
      throw new Error(`group ${gi}: ${g.rewards.length} rewards for ${g.completions.length} completions`);
    }
    if (g.completions.length === 0) throw new Error(`group ${gi} has no completions`);
    if (isDegenerateGroup(g.rewards, 0, g.rewards.length)) degenerate++;
  }

  // All groups' advantages at once: batch_std's std is the batch's, not each group's.
  const groupAdvantages = batchAdvantages(groups.map((g) => g.rewards), opts.estimator);
  const rows: { prompt: ArrayLike<number>; c: SampledCompletion; advantage: number }[] = [];
  groups.forEach((g, gi) => g.completions.forEach((c, i) => rows.push({ prompt: g.promptIds, c, advantage: groupAdvantages[gi][i] })));
  const n = rows.length;
  const seqLen = Math.max(2, ...rows.map((r) => r.prompt.length + r.c.tokenIds.length));
  const tokens = new Int32Array(n * seqLen).fill(opts.padId);
  const lengths = new Int32Array(n);
  const mask = new Float32Array(n * (seqLen - 1));
  const oldLogprobs = new Float32Array(n * (seqLen - 1));
  const advantages = new Float64Array(n);
  let maskedTokens = 0;
  let maxCompletionTokens = 0;

  rows.forEach((r, i) => {
    const P = r.prompt.length;
    const L = r.c.tokenIds.length;
    if (P < 1) throw new Error(`sequence ${i}: an empty prompt has no position to predict the first token from`);
    if (r.c.logprobs.length !== L) throw new Error(`sequence ${i}: ${r.c.logprobs.length} log-probs for ${L} completion tokens`);
    const own = r.c.lossMask && r.c.lossMask.length > 0 ? r.c.lossMask : undefined;
    if (own && own.length !== L) throw new Error(`sequence ${i}: a loss mask of ${own.length} entries for ${L} completion tokens`);
    tokens.set(r.prompt, i * seqLen);
    tokens.set(r.c.tokenIds, i * seqLen + P);
    lengths[i] = P + L;
    advantages[i] = r.advantage;
    maxCompletionTokens = Math.max(maxCompletionTokens, L);
    const cutOff = r.c.finishReason === 'length';
    if (cutOff) overlong++;
    if (cutOff && opts.filterOverlong) return;
    const row = i * (seqLen - 1);
    for (let k = 0; k < L; k++) {
      if (own && !own[k]) continue;
      mask[row + P + k - 1] = 1;
      oldLogprobs[row + P + k - 1] = r.c.logprobs[k];
      maskedTokens++;
    }
  });

  return {
    n,
    seqLen,
    tokens,
    lengths,
    mask,
    oldLogprobs,
    advantages,
    maskedTokens,
    maxCompletionTokens,
    stats: { groups: groups.length, degenerateGroups: degenerate, overlongCompletions: overlong },
  };
}

export type MicroBatch = Pick<TrainingBatch, 'n' | 'seqLen' | 'tokens' | 'lengths' | 'mask' | 'oldLogprobs' | 'advantages'>;

/** Consecutive slices of at most `size` sequences (views, no copies). */
export function microBatches(b: TrainingBatch, size: number): MicroBatch[] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`micro-batch size must be a positive integer (got ${size})`);
  const out: MicroBatch[] = [];
  const T = b.seqLen - 1;
  for (let s = 0; s < b.n; s += size) {
    const e = Math.min(b.n, s + size);
    out.push({
      n: e - s,
      seqLen: b.seqLen,
      tokens: b.tokens.subarray(s * b.seqLen, e * b.seqLen),
      lengths: b.lengths.subarray(s, e),
      mask: b.mask.subarray(s * T, e * T),
      oldLogprobs: b.oldLogprobs.subarray(s * T, e * T),
      advantages: b.advantages.subarray(s, e),
    });
  }
  return out;
}
