// The GRPO family against ../shared/fixtures/grpo: golden values from an independent float64
// reference of the published definitions (same inputs, same numbers within 1e-9).
import { AdvantageEstimator, groupAdvantages, LossAggregation, policyLoss, RatioLevel } from '@temper/algorithms';
import * as fs from 'node:fs';
import * as path from 'node:path';

const fixture = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'fixtures', 'grpo', 'cases.json');

interface AdvantageCase {
  kind: 'advantages';
  estimator: AdvantageEstimator;
  group_size: number;
  rewards: number[];
  advantages: number[];
}
interface LossCase {
  kind: 'loss';
  beta: number;
  eps_low: number;
  eps_high: number;
  level: RatioLevel;
  loss_type: LossAggregation;
  max_completion_length: number;
  mask: number[][];
  logprobs: number[][];
  old_logprobs: number[][];
  ref_logprobs: number[][];
  advantages: number[];
  loss: number;
  dloss_dlogprobs: number[][];
}

const cases = (JSON.parse(fs.readFileSync(fixture, 'utf8')) as { cases: (AdvantageCase | LossCase)[] }).cases;
const advantageCases = cases.filter((c): c is AdvantageCase => c.kind === 'advantages');
const lossCases = cases.filter((c): c is LossCase => c.kind === 'loss');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('advantage estimators match the reference', () => {
  it('covers every estimator', () => {
    expect(advantageCases.map((c) => c.estimator).sort()).toEqual(['batch_std', 'dr_grpo', 'grpo', 'rloo']);
  });
  it.each(advantageCases.map((c) => [c.estimator, c] as const))('%s', (_name, c) => {
    expect(maxAbsDiff(groupAdvantages(c.rewards, c.group_size, c.estimator), c.advantages)).toBeLessThan(1e-9);
  });
});

describe('policy losses match the reference', () => {
  it.each(lossCases.map((c) => [`${c.loss_type}/${c.level}/beta=${c.beta}/eps=${c.eps_low},${c.eps_high}`, c] as const))(
    '%s',
    (_name, c) => {
      const out = policyLoss({
        n: c.mask.length,
        t: c.mask[0].length,
        logprobs: c.logprobs.flat(),
        oldLogprobs: c.old_logprobs.flat(),
        refLogprobs: c.ref_logprobs.flat(),
        mask: c.mask.flat(),
        advantages: c.advantages,
        epsLow: c.eps_low,
        epsHigh: c.eps_high,
        beta: c.beta,
        klEstimator: 'k3',
        level: c.level,
        aggregation: c.loss_type,
        maxCompletionLength: c.max_completion_length,
      });
      expect(Math.abs(out.loss - c.loss)).toBeLessThan(1e-9);
      expect(maxAbsDiff(out.dlogprobs, c.dloss_dlogprobs.flat())).toBeLessThan(1e-9);
    },
  );
});
