// Partial rollouts: a batch sampled a segment of tokens at a time, each segment by the newest
// policy of the run at hand when it starts, so a version that arrives mid-rollout finishes the
// rollout (asynchronous GRPO: the learner trains on while generators sample). Every token
// records the version that produced it; its log-prob is that version's. A segment after the
// first goes on from each unfinished sequence's prompt and tokens so far (the new weights
// read the prefix again), one sample each.
import type { Completion as EngineCompletion, Model } from '@temper/native';

export interface SegmentPolicy {
  model: Model;
  version: number;
}

export interface SegmentedOptions {
  /** The policy to sample the next segment with (called as each segment starts). */
  policy: () => SegmentPolicy;
  prompts: Int32Array[];
  /** Samples per prompt. */
  n: number;
  maxNewTokens: number;
  /** Tokens per segment (> 0). */
  segmentTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  stopTokens: Int32Array | number[];
  seed: number;
}

export interface SegmentedCompletion extends EngineCompletion {
  /** The policy version that produced each token. */
  versions: number[];
}

export async function generateInSegments(o: SegmentedOptions): Promise<SegmentedCompletion[]> {
  if (!(Number.isInteger(o.segmentTokens) && o.segmentTokens > 0)) throw new Error(`segmentTokens must be a positive integer (got ${o.segmentTokens})`);
  const sequences = o.prompts.flatMap((prefix, prompt) =>
    Array.from({ length: o.n }, (_, sample) => ({ prompt, sample, prefix, tokens: [] as number[], logprobs: [] as number[], versions: [] as number[], finish: undefined as 'stop' | 'length' | undefined })),
  );
  for (let segment = 0; ; segment++) {
    const open = sequences.filter((s) => !s.finish);
    if (open.length === 0) break;
    const p = o.policy();
    // Every open sequence has sampled every segment so far in full: they are as long as each other.
    const done = open[0].tokens.length;
    const first = segment === 0;
    const out = await p.model.generate({
      prompts: first ? o.prompts : open.map((s) => Int32Array.from([...s.prefix, ...s.tokens])),
      n: first ? o.n : 1,
      maxNewTokens: Math.min(o.segmentTokens, o.maxNewTokens - done),
      temperature: o.temperature,
      topP: o.topP,
      topK: o.topK,
      stopTokens: o.stopTokens,
      // Each segment its own streams (the engine derives one per sequence from the seed and its position).
      seed: first ? o.seed : (o.seed + segment * 1_000_003) % 2 ** 48,
    });
    out.forEach((c, i) => {
      const s = open[i];
      for (let k = 0; k < c.tokens.length; k++) {
        s.tokens.push(c.tokens[k]);
        s.logprobs.push(c.logprobs[k]);
        s.versions.push(p.version);
      }
      if (c.finishReason === 'stop') s.finish = 'stop';
      else if (s.tokens.length >= o.maxNewTokens) s.finish = 'length';
    });
  }
  return sequences.map((s) => ({ prompt: s.prompt, sample: s.sample, tokens: Int32Array.from(s.tokens), logprobs: Float32Array.from(s.logprobs), finishReason: s.finish!, versions: s.versions }));
}
