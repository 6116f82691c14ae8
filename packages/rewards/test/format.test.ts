import { compileRewardSpec } from '@temper/rewards';

const formatScore = (completion: string, options: Record<string, unknown> = {}) =>
  compileRewardSpec({ components: [{ name: 'format', weight: 1, options }] }).score({ completion, reference: '' }).components.format;

describe('format', () => {
  it.each([
    '<think>reasoning</think><answer>42</answer>',
    '<think>\nreasoning\n</think>\n<answer>\n42\n</answer>\n',
    '  <think>a</think> <answer>b</answer>  ',
    '<think></think><answer>42</answer>',
  ])('accepts %j', (c) => {
    expect(formatScore(c)).toBe(1);
  });

  it.each([
    ['no tags', 'just 42'],
    ['answer only', '<answer>42</answer>'],
    ['think only', '<think>hmm</think>'],
    ['text after the answer', '<think>a</think><answer>42</answer> and more'],
    ['text before think', 'Sure! <think>a</think><answer>42</answer>'],
    ['text between', '<think>a</think> so <answer>42</answer>'],
    ['two answers', '<think>a</think><answer>1</answer><answer>2</answer>'],
    ['two thinks', '<think>a</think><think>b</think><answer>2</answer>'],
    ['wrong order', '<answer>42</answer><think>a</think>'],
    ['empty answer', '<think>a</think><answer> </answer>'],
    ['unclosed answer', '<think>a</think><answer>42'],
    ['nested answer in think', '<think>a<answer>1</answer></think><answer>2</answer>'],
  ])('rejects %s', (_why, c) => {
    expect(formatScore(c)).toBe(0);
  });

  it('gives partial credit by the share of checks passed', () => {
    const almost = '<think>a</think><answer>42</answer> trailing';
    const v = formatScore(almost, { partialCredit: 0.5 });
    expect(v).toBeCloseTo((0.5 * 5) / 6);
    const worse = formatScore('42', { partialCredit: 0.5 });
    expect(worse).toBeLessThan(v);
    expect(formatScore('<think>a</think><answer>42</answer>', { partialCredit: 0.5 })).toBe(1);
  });

  it('accepts a completion that starts inside <think> when the prompt opened it', () => {
    expect(formatScore('reasoning</think><answer>42</answer>', { thinkOpenedInPrompt: true })).toBe(1);
    expect(formatScore('reasoning</think><answer>42</answer>')).toBe(0);
    expect(formatScore('<think>again</think><answer>42</answer>', { thinkOpenedInPrompt: true })).toBe(0);
  });

  it('takes tags and a whole-completion regex from its options', () => {
    expect(formatScore('<reasoning>a</reasoning><final>1</final>', { thinkTag: 'reasoning', answerTag: 'final' })).toBe(1);
    expect(formatScore('<answer>1</answer>', { thinkTag: '' })).toBe(1);
    expect(formatScore('Step 1 ... #### 7', { regex: '[\\s\\S]*#### -?\\d+\\s*' })).toBe(1);
    expect(formatScore('#### 7 and more', { regex: '[\\s\\S]*#### -?\\d+\\s*' })).toBe(0);
    expect(() => formatScore('x', { regex: '[' })).toThrow('options.regex');
    expect(() => formatScore('x', { partialCredit: 2 })).toThrow('options.partialCredit: must be at most 1');
  });
});
