// The scorer publishes a ScoredGroup around the RolloutGroup bytes it received instead of
// encoding the group again: what the learner decodes must be exactly the scored group.
import { FinishReason, RolloutGroup, ScoredGroup } from '@temper/proto';
import { encodeScoredGroup } from '../src/worker';

describe('encodeScoredGroup', () => {
  it('decodes to the same ScoredGroup as encoding it whole, for groups of every size', () => {
    for (const completions of [0, 1, 3, 40]) {
      const group = RolloutGroup.fromPartial({
        key: { runId: 'run-1', step: 7, groupIndex: 3, attempt: 1 },
        prompt: { text: 'What is 6 * 7?', tokenIds: [1, 2, 3] },
        reference: '42',
        completions: Array.from({ length: completions }, (_, i) => ({
          text: `<answer>${i}</answer>`.repeat(i + 1),
          tokenIds: Array.from({ length: 30 * i + 1 }, (_, t) => (t * 7919) % 300),
          logprobs: Array.from({ length: 30 * i + 1 }, (_, t) => -0.01 * t),
          finishReason: FinishReason.FINISH_REASON_STOP,
        })),
        policyVersion: 12,
        generatorId: 'gen-a',
        generateSeconds: 0.25,
      });
      const raw = RolloutGroup.encode(group).finish();
      const scored: ScoredGroup = {
        group: RolloutGroup.decode(raw),
        rewards: Array.from({ length: completions }, (_, i) => ({ total: i / 2, components: { accuracy: i % 2, format: 1 }, truncated: false, flags: i ? [] : ['no_answer'], extractedAnswer: String(i) })),
        scoreSeconds: 0.001,
      };
      const decoded = ScoredGroup.decode(encodeScoredGroup(raw, scored));
      expect(decoded).toEqual(ScoredGroup.decode(ScoredGroup.encode(scored).finish()));
      expect(decoded.group).toEqual(RolloutGroup.decode(raw)); // (logprobs are float32 on the wire)
    }
  });
});
