// A GRPO step's metrics name no task: the reward spec says which components are reported as
// accuracy and format rate (a component at 1 or more; partial credit is neither).
import { ScoredGroup } from '@temper/proto';
import { Collected } from '../src/grpo/collect';
import { stepMetrics, StepReport } from '../src/grpo/metrics';

const group = ScoredGroup.fromPartial({
  group: { policyVersion: 3, completions: [{ tokenIds: [1, 2] }, { tokenIds: [3] }] },
  rewards: [
    { total: 1.5, components: { countdown: 1, format: 1 } },
    { total: 0.55, components: { countdown: 0.3, format: 0.5 }, flags: ['bad_format', 'missed_target'] },
  ],
});
const collected: Collected = { groups: [group], asked: 2, stale: 0, degenerate: 0, refills: 1 };
const report: StepReport = { collected, batch: { maskedTokens: 3, stats: { overlongCompletions: 0 } }, train: null, lr: 1e-3, policyVersion: 4, streamed: true, stepMs: 1000, waitedMs: 100, learnMs: 500, syncMs: 50 };

describe('GRPO step metrics', () => {
  it('report the components the spec names as accuracy and format rate, solved outright only', () => {
    const values = stepMetrics(report, { accuracy: 'countdown', format: 'format' });
    expect(values).toMatchObject({ accuracy: 0.5, format_rate: 0.5, 'reward/countdown': 0.65, 'reward/format': 0.75, groups: 1, short_groups: 1, refill_rounds: 1, weights_streamed: 1 });
  });

  it('report the share of completions with each scorer flag', () => {
    const values = stepMetrics(report, {});
    expect(values['flag/bad_format']).toBe(0.5);
    expect(values['flag/missed_target']).toBe(0.5);
    expect(Object.keys(values).filter((k) => k.startsWith('flag/'))).toHaveLength(2);
  });

  it('report neither when the spec names no component for them', () => {
    const values = stepMetrics(report, {});
    expect(values.accuracy).toBeUndefined();
    expect(values.format_rate).toBeUndefined();
    expect(values['reward/countdown']).toBeCloseTo(0.65, 12);
  });
});
