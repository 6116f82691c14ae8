import { compileRewardSpec } from '@temper/rewards';

const spec = (options: Record<string, unknown> = {}) => compileRewardSpec({ components: [{ name: 'length', weight: 1 }, { name: 'overlong', weight: 1, options }] });
const lengthSpec = (options: Record<string, unknown>) => compileRewardSpec({ components: [{ name: 'length', weight: 1, options }] });
const right = '<answer>42</answer>';
const wrong = '<answer>41</answer>';

describe('length (cosine-scaled)', () => {
  const at = (completion: string, tokens: number, options: Record<string, unknown> = { maxLength: 1000 }) =>
    lengthSpec(options).score({ completion, reference: '42', completionTokens: tokens }).components.length;

  it('prefers shorter correct answers', () => {
    expect(at(right, 0)).toBeCloseTo(1);
    expect(at(right, 500)).toBeCloseTo(0.75);
    expect(at(right, 1000)).toBeCloseTo(0.5);
    expect(at(right, 5000)).toBeCloseTo(0.5);
    expect(at(right, 100)).toBeGreaterThan(at(right, 200));
  });

  it('prefers longer wrong answers, always below any correct one', () => {
    expect(at(wrong, 0)).toBeCloseTo(-1);
    expect(at(wrong, 500)).toBeCloseTo(-0.75);
    expect(at(wrong, 1000)).toBeCloseTo(-0.5);
    expect(at(wrong, 300)).toBeGreaterThan(at(wrong, 100));
    expect(at(wrong, 1000)).toBeLessThan(at(right, 1000));
    expect(at('no answer', 900)).toBeLessThan(0);
  });

  it('takes its bounds from the options and the limit from the item', () => {
    const o = { minCorrect: 2, maxCorrect: 3, minWrong: -10, maxWrong: 0, maxLength: 100 };
    expect(at(right, 0, o)).toBeCloseTo(3, 1); // 0 tokens means: estimate (5 here)
    expect(at(right, 100, o)).toBeCloseTo(2);
    expect(at(wrong, 0, o)).toBeCloseTo(-10, 0);
    expect(at(wrong, 100, o)).toBeCloseTo(0);
    const byItem = lengthSpec({}).score({ completion: right, reference: '42', completionTokens: 200, maxTokens: 400 });
    expect(byItem.components.length).toBeCloseTo(0.75);
    expect(() => at(right, 0, { minCorrect: 2, maxCorrect: 1 })).toThrow('options.minCorrect');
  });

  it('estimates the length from the text when no token count is given', () => {
    const short = lengthSpec({ maxLength: 1000 }).score({ completion: right, reference: '42' }).components.length;
    const long = lengthSpec({ maxLength: 1000 }).score({ completion: 'x'.repeat(3000) + right, reference: '42' }).components.length;
    expect(short).toBeGreaterThan(0.99);
    expect(long).toBeLessThan(0.7);
  });
});

describe('overlong', () => {
  const pen = (tokens: number, maxTokens: number, options: Record<string, unknown> = {}) =>
    spec(options).score({ completion: right, reference: '42', completionTokens: tokens, maxTokens }).components.overlong;

  it('is 0 clear of the limit, ramps over the buffer and is -penalty at and past the limit', () => {
    expect(pen(100, 1024)).toBe(0);
    expect(pen(768, 1024)).toBe(0);
    expect(pen(896, 1024)).toBeCloseTo(-0.5);
    expect(pen(1024, 1024)).toBe(-1);
    expect(pen(4000, 1024)).toBe(-1);
    expect(spec().score({ completion: right, reference: '42', completionTokens: 1024, maxTokens: 1024 }).flags).toContain('overlong');
  });

  it('uses its own limit, buffer and penalty when given, and nothing without a limit', () => {
    expect(pen(90, 0, { maxTokens: 100, buffer: 20, penalty: 2 })).toBeCloseTo(-1);
    expect(pen(5000, 0)).toBe(0);
    expect(pen(10, 8, { buffer: 1000 })).toBe(-1);
  });
});
