import { compileRewardSpec } from '@temper/rewards';

const one = (name: string, completion: string, options: Record<string, unknown> = {}, prompt = '') =>
  compileRewardSpec({ components: [{ name, weight: 1, options }] }).score({ completion, reference: '1', prompt });

describe('repetition', () => {
  const prose =
    'First we add the two numbers to get eight. Then we multiply by three which gives twenty four. Finally subtracting four leaves twenty.';

  it('is 0 without repeated n-grams and for text shorter than n words', () => {
    expect(one('repetition', prose).components.repetition).toBe(0);
    expect(one('repetition', 'two words').components.repetition).toBe(0);
    expect(one('repetition', '').components.repetition).toBe(0);
  });

  it('grows towards maxPenalty as the text loops', () => {
    const some = one('repetition', prose + ' ' + prose).components.repetition;
    const loop = one('repetition', 'so the answer is '.repeat(200)).components.repetition;
    expect(some).toBeLessThan(0);
    expect(loop).toBeLessThan(some);
    expect(loop).toBeCloseTo(-1, 1);
    expect(one('repetition', 'so the answer is '.repeat(200)).flags).toContain('repetitive');
  });

  it('takes n, maxPenalty and scope from its options', () => {
    const text = 'a b a c a d a e';
    expect(one('repetition', text, { n: 1 }).components.repetition).toBeLessThan(0);
    expect(one('repetition', text, { n: 2 }).components.repetition).toBe(0);
    expect(one('repetition', 'go '.repeat(100), { maxPenalty: -0.2 }).components.repetition).toBeGreaterThanOrEqual(-0.2);
    const loopInThink = `<think>${'again and again '.repeat(50)}</think><answer>${prose}</answer>`;
    expect(one('repetition', loopInThink, { scope: 'answer' }).components.repetition).toBe(0);
    expect(one('repetition', loopInThink, { scope: 'reasoning' }).components.repetition).toBeLessThan(-0.5);
    expect(() => one('repetition', 'x', { n: 0 })).toThrow('options.n: must be at least 1');
    expect(() => one('repetition', 'x', { scope: 'all' })).toThrow('options.scope: must be one of');
  });

  it('is case-insensitive and ignores spacing', () => {
    expect(one('repetition', 'The cat sat. the   cat sat.').components.repetition).toBeLessThan(0);
  });
});

describe('language', () => {
  it('is 0 for text in one script, with digits, math and Greek variables', () => {
    expect(one('language', 'The area is $\\pi r^2$ = 12.5 when α = 2.').components.language).toBe(0);
    expect(one('language', '答案是四十二，因为六乘七等于四十二。').components.language).toBe(0);
    expect(one('language', 'Ответ: сорок два.').components.language).toBe(0);
    expect(one('language', '12 + 30 = 42').components.language).toBe(0);
  });

  it('penalises switching scripts mid-answer by the foreign share', () => {
    const mixed = one('language', 'First we compute the sum, 然后我们乘以二 and get the answer.');
    expect(mixed.components.language).toBeLessThan(0);
    expect(mixed.components.language).toBeGreaterThan(-0.5);
    expect(mixed.flags).toContain('script_switch');
    const more = one('language', 'First 然后我们乘以二然后我们乘以二然后我们乘以二 answer.');
    expect(more.components.language).toBeLessThan(mixed.components.language);
  });

  it('accepts the scripts that belong together (kana with kanji)', () => {
    expect(one('language', 'これは日本語の文章です。答えは四十二です。').components.language).toBe(0);
  });

  it('expects a given script, or the prompt\'s', () => {
    expect(one('language', 'Ответ: сорок два.', { expected: 'Latin' }).components.language).toBeCloseTo(-1);
    expect(one('language', 'The answer is forty two.', { expected: 'prompt' }, 'Сколько будет шесть на семь?').components.language).toBeCloseTo(-1);
    expect(one('language', 'Ответ сорок два', { expected: 'prompt' }, 'Сколько будет шесть на семь?').components.language).toBe(0);
  });

  it('takes tolerance, penalty, allowed scripts, scope and math handling from its options', () => {
    const text = 'Mostly English words here with one 字.';
    expect(one('language', text).components.language).toBeLessThan(0);
    expect(one('language', text, { tolerance: 0.1 }).components.language).toBe(0);
    expect(one('language', text, { allowed: ['Han'] }).components.language).toBe(0);
    expect(one('language', text, { penalty: 0 }).components.language).toBeCloseTo(0);
    expect(one('language', '<think>思考一下</think><answer>forty two</answer>', { scope: 'answer' }).components.language).toBe(0);
    expect(one('language', '答案是 $\\frac{1}{2}$', { ignoreMath: false }).components.language).toBeLessThan(0);
    expect(one('language', '答案是 $\\frac{1}{2}$').components.language).toBe(0);
    expect(() => one('language', 'x', { expected: 'Klingon' })).toThrow('options.expected: must be one of');
  });
});
