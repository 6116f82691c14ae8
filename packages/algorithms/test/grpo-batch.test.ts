import { buildTrainingBatch, microBatches, policyLoss, ScoredPromptGroup, STD_EPS } from '@temper/algorithms';

const groups: ScoredPromptGroup[] = [
  {
    promptIds: [1, 2, 3],
    completions: [
      { tokenIds: [7, 8], logprobs: [-0.1, -0.2], finishReason: 'stop' },
      { tokenIds: [9], logprobs: [-0.3], finishReason: 'stop' },
    ],
    rewards: [1, 0],
  },
  {
    promptIds: [4],
    completions: [
      { tokenIds: [5, 5, 5, 5], logprobs: [-1, -1, -1, -1], finishReason: 'length' },
      { tokenIds: [6], logprobs: [-0.5], finishReason: 'stop' },
    ],
    rewards: [0, 2],
  },
  {
    promptIds: [2, 2],
    completions: [
      { tokenIds: [1], logprobs: [-0.7], finishReason: 'stop' },
      { tokenIds: [1], logprobs: [-0.7], finishReason: 'stop' },
    ],
    rewards: [1, 1],
  },
];

describe('buildTrainingBatch', () => {
  it('lays completions out in the engine log-prob layout', () => {
    const b = buildTrainingBatch(groups, { estimator: 'dr_grpo', filterOverlong: false, padId: 0 });
    expect(b.n).toBe(6);
    expect(b.seqLen).toBe(5);
    expect(Array.from(b.tokens.subarray(0, 5))).toEqual([1, 2, 3, 7, 8]);
    expect(Array.from(b.tokens.subarray(5, 10))).toEqual([1, 2, 3, 9, 0]);
    expect(Array.from(b.lengths)).toEqual([5, 4, 5, 2, 3, 3]);
    // Sequence 0: prompt length 3, so completion tokens 7, 8 are predicted at entries 2 and 3.
    expect(Array.from(b.mask.subarray(0, 4))).toEqual([0, 0, 1, 1]);
    expect(Array.from(b.oldLogprobs.subarray(0, 4))).toEqual([0, 0, expect.closeTo(-0.1, 6), expect.closeTo(-0.2, 6)]);
    // Sequence 2: prompt [4], completion of 4 tokens at entries 0..3.
    expect(Array.from(b.mask.subarray(8, 12))).toEqual([1, 1, 1, 1]);
    expect(Array.from(b.advantages)).toEqual([0.5, -0.5, -1, 1, 0, 0]);
    expect(b.maskedTokens).toBe(2 + 1 + 4 + 1 + 1 + 1);
    expect(b.stats).toEqual({ groups: 3, degenerateGroups: 1, overlongCompletions: 1 });
  });

  it('masks out overlong completions when asked, and trains degenerate groups with advantage 0', () => {
    const b = buildTrainingBatch(groups, { estimator: 'grpo', filterOverlong: true, padId: 0 });
    expect(b.n).toBe(6);
    expect(Array.from(b.mask.subarray(2 * 4, 3 * 4))).toEqual([0, 0, 0, 0]);
    expect(b.maskedTokens).toBe(2 + 1 + 1 + 1 + 1);
    expect(Array.from(b.advantages.subarray(4))).toEqual([0, 0]);
    expect(b.stats.degenerateGroups).toBe(1);
  });

  it('batch_std scales every group by the std of all the batch\'s rewards, not its own', () => {
    const b = buildTrainingBatch(groups, { estimator: 'batch_std', filterOverlong: false, padId: 0 });
    const all = groups.flatMap((g) => g.rewards);
    const mean = all.reduce((a, x) => a + x, 0) / all.length;
    const std = Math.sqrt(all.reduce((a, x) => a + (x - mean) ** 2, 0) / (all.length - 1));
    const expected = groups.flatMap((g) => {
      const groupMean = g.rewards.reduce((a, x) => a + x, 0) / g.rewards.length;
      return g.rewards.map((r) => (r - groupMean) / (std + STD_EPS));
    });
    Array.from(b.advantages).forEach((a, i) => expect(a).toBeCloseTo(expected[i], 12));
    // Per-group scaling (what grpo does) would give group 0 +-0.707; the batch's std gives less.
    expect(b.advantages[0]).toBeCloseTo(0.5 / (std + STD_EPS), 12);
    expect(b.advantages[0]).not.toBeCloseTo(buildTrainingBatch(groups, { estimator: 'grpo', filterOverlong: false, padId: 0 }).advantages[0], 3);
  });

  it("trains a multi-turn completion's own tokens only: the loss mask keeps the environment's out of mask, old log-probs and token counts", () => {
    // Prompt [1, 2]; turn [7, 8], observation [30, 31, 32], turn [9].
    const multi: ScoredPromptGroup[] = [
      {
        promptIds: [1, 2],
        completions: [
          { tokenIds: [7, 8, 30, 31, 32, 9], logprobs: [-0.1, -0.2, 0, 0, 0, -0.3], finishReason: 'stop', lossMask: [1, 1, 0, 0, 0, 1] },
          { tokenIds: [4], logprobs: [-0.4], finishReason: 'stop', lossMask: [] },
        ],
        rewards: [1, 0],
      },
    ];
    const b = buildTrainingBatch(multi, { estimator: 'grpo', filterOverlong: false, padId: 0 });
    expect(b.seqLen).toBe(8);
    expect(Array.from(b.mask.subarray(0, 7))).toEqual([0, 1, 1, 0, 0, 0, 1]);
    expect(Array.from(b.oldLogprobs.subarray(0, 7))).toEqual([0, expect.closeTo(-0.1, 6), expect.closeTo(-0.2, 6), 0, 0, 0, expect.closeTo(-0.3, 6)]);
    // An empty mask means every token is the model's.
    expect(Array.from(b.mask.subarray(7, 14))).toEqual([0, 1, 0, 0, 0, 0, 0]);
    expect(b.maskedTokens).toBe(4);
    // The loss has no gradient on an observation token.
    const out = policyLoss({ n: b.n, t: b.seqLen - 1, logprobs: b.oldLogprobs, oldLogprobs: b.oldLogprobs, mask: b.mask, advantages: b.advantages, epsLow: 0.2, epsHigh: 0.2, beta: 0, klEstimator: 'k3', level: 'token', aggregation: 'grpo', maxCompletionLength: 8 });
    expect([3, 4, 5].map((t) => out.dlogprobs[t])).toEqual([0, 0, 0]);
    expect(out.dlogprobs[1]).not.toBe(0);
    expect(() => buildTrainingBatch([{ ...multi[0], completions: [{ ...multi[0].completions[0], lossMask: [1, 0] }, multi[0].completions[1]] }], { estimator: 'grpo', filterOverlong: false, padId: 0 })).toThrow(
      'sequence 0: a loss mask of 2 entries for 6 completion tokens',
    );
  });

  it('names a group whose rewards do not match its completions', () => {
    expect(() =>
      buildTrainingBatch([{ ...groups[0], rewards: [1] }], { estimator: 'grpo', filterOverlong: false, padId: 0 }),
    ).toThrow(/group 0: 1 rewards for 2 completions/);
  });
});

describe('micro-batches', () => {
  it.each(['grpo', 'bnpo', 'dr_grpo'] as const)('add up to the whole batch loss and gradient (%s)', (aggregation) => {
    const b = buildTrainingBatch(groups, { estimator: 'grpo', filterOverlong: false, padId: 0 });
    const T = b.seqLen - 1;
    // A "new" policy a little away from the rollout one.
    const logprobs = Array.from(b.oldLogprobs, (x, j) => x + 0.05 * Math.sin(j));
    const common = { epsLow: 0.2, epsHigh: 0.28, beta: 0, level: 'token' as const, aggregation, maxCompletionLength: 8 };
    const whole = policyLoss({ ...common, n: b.n, t: T, logprobs, oldLogprobs: b.oldLogprobs, mask: b.mask, advantages: b.advantages });
    let loss = 0;
    const grad: number[] = [];
    let offset = 0;
    for (const mb of microBatches(b, 4)) {
      const out = policyLoss({
        ...common,
        n: mb.n,
        t: T,
        logprobs: logprobs.slice(offset, offset + mb.n * T),
        oldLogprobs: mb.oldLogprobs,
        mask: mb.mask,
        advantages: mb.advantages,
        batch: { sequences: b.n, tokens: b.maskedTokens },
      });
      offset += mb.n * T;
      loss += out.loss;
      grad.push(...out.dlogprobs);
    }
    expect(loss).toBeCloseTo(whole.loss, 12);
    grad.forEach((g, j) => expect(g).toBeCloseTo(whole.dlogprobs[j], 12));
  });
});
