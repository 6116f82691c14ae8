import { parseCountdownProblem, taskStream } from '@temper/data';
import { compileRewardSpec } from '@temper/rewards';

const score = (answer: string, reference: string, options: Record<string, unknown> = {}) => {
  const spec = compileRewardSpec({ components: [{ name: 'countdown', weight: 1, options }] });
  const out = spec.score({ completion: `<think>trying</think><answer>${answer}</answer>`, reference });
  return { value: out.components.countdown, flags: out.flags };
};

describe('countdown reward', () => {
  it.each([
    ['the reference solution', '9+4', '9+4'],
    ['the same solution in another order', '4+9', '9+4'],
    ['another solution', '(7-3)*4+3', '3,3,4,7=19'],
    ['an equation whose left side solves it', '4*3+7=19', '7,3,4=19'],
    ['a solution given as the listed problem', '12-5', '5,12=7'],
  ])('gives full credit to %s', (_why, answer, reference) => {
    expect(score(answer, reference).value).toBe(1);
  });

  it.each([
    ['the target copied from the prompt', '13', '9+4'],
    ['a number not given', '10+3', '9+4'],
    ['a number used twice', '9+9-5', '9+4'],
    ['a number left out (rules: use all)', '9', '9,4,1=9'],
    ['a wrong value', '9-4', '9+4'],
    ['a power', '2**3', '2,3=8'],
    ['code', 'process.exit()', '9+4'],
  ])('gives nothing for %s (no partial credit set)', (_why, answer, reference) => {
    expect(score(answer, reference).value).toBe(0);
  });

  it('judges only the final answer, never the reasoning', () => {
    const spec = compileRewardSpec({ components: [{ name: 'countdown', weight: 1 }] });
    expect(spec.score({ completion: '<think>9+4</think><answer>13</answer>', reference: '9+4' }).total).toBe(0);
    expect(spec.score({ completion: '<think>9+4</think>', reference: '9+4' }).flags).toContain('no_answer');
    expect(spec.score({ completion: '<think>a</think><answer>9+4</answer><answer>9-4</answer>', reference: '9+4' }).total).toBe(0);
  });

  it('gives partial credit to a legal miss, more the closer it comes, never to a broken rule', () => {
    const near = score('7*3', '7,3=22', { partialCredit: 0.5 }); // 21
    const far = score('7+3', '7,3=22', { partialCredit: 0.5 }); // 10
    expect(near.value).toBeCloseTo(0.5 * (1 - 1 / 22));
    expect(far.value).toBeCloseTo(0.5 * (1 - 12 / 22));
    expect(near.flags).toContain('missed_target');
    expect(score('22', '7,3=22', { partialCredit: 0.5 }).value).toBe(0);
    expect(score('7*3+1', '7,3=22', { partialCredit: 0.5 }).value).toBe(0);
    expect(score('7*3*3', '7,3=22', { partialCredit: 0.5 }).value).toBe(0);
  });

  it('allows leaving numbers out when told to', () => {
    expect(score('9', '9,4,1=9', { mustUseAll: false }).value).toBe(1);
    expect(score('9+9', '9,4,1=18', { mustUseAll: false }).value).toBe(0);
  });

  it('flags a reference that poses no problem', () => {
    expect(score('1+1', 'two').flags).toContain('bad_reference');
    expect(score('4/3', '4/3').flags).toContain('bad_reference');
  });

  it('accepts every built-in countdown answer as its own reference, and other solutions to it', () => {
    const items = taskStream({ task: 'countdown', split: 'train', difficulty: [1, 2, 3, 4, 5], seed: 11 });
    for (let i = 0; i < 200; i++) {
      const item = items.next().value!;
      const problem = parseCountdownProblem(item.answer)!;
      expect([[...problem.numbers].sort((a, b) => a - b), problem.target]).toEqual([[...(item.meta.numbers as number[])].sort((a, b) => a - b), item.meta.target]);
      expect(score(item.answer, item.answer).value).toBe(1);
      expect(score(String(item.meta.target), item.answer).value).toBe(0);
    }
  });
});
