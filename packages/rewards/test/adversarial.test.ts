// Inputs built to hurt: every one must be scored quickly, without a crash and without
// a wrong "correct".
import { compileRewardSpec } from '@temper/rewards';

const all = compileRewardSpec({
  components: [
    { name: 'accuracy', weight: 1 },
    { name: 'format', weight: 1 },
    { name: 'length', weight: 1 },
    { name: 'overlong', weight: 1, options: { maxTokens: 1000 } },
    { name: 'repetition', weight: 1 },
    { name: 'language', weight: 1 },
    { name: 'reasoning', weight: 1 },
    { name: 'choice_guard', weight: 1 },
  ],
});

const big = 60000;
const cases: [string, string][] = [
  ['unclosed boxes', '\\boxed{'.repeat(big / 7)],
  ['closing tags only', '</answer>'.repeat(big / 9)],
  ['opening tags only', '<answer>'.repeat(big / 8)],
  ['alternating tags', '<answer>42</answer>'.repeat(big / 18)],
  ['deep braces', '\\boxed{' + '{'.repeat(big) + '42' + '}'.repeat(big) + '}'],
  ['deep parentheses', '<answer>' + '('.repeat(big / 2) + '42' + ')'.repeat(big / 2) + '</answer>'],
  ['long answer', '<answer>' + '1+'.repeat(big / 2) + '1</answer>'],
  ['many list items', '<answer>' + '42,'.repeat(big / 3) + '</answer>'],
  ['power tower', '<answer>' + Array(300).fill('9').join('^') + '</answer>'],
  ['many backslashes', '<answer>' + '\\'.repeat(big) + '</answer>'],
  ['many text commands', '<answer>' + '\\text{'.repeat(big / 6) + '</answer>'],
  ['nul and surrogates', '<answer>\u0000\ud800\udfff42</answer>'],
  ['one word', 'a'.repeat(big)],
  ['many equal answers', Array.from({ length: 4000 }, (_, i) => `\\boxed{41${i % 2 ? '.' + '0'.repeat(i % 9) : ''}}`).join(' ')],
  ['many different answers', Array.from({ length: 4000 }, (_, i) => `\\boxed{${i}}`).join(' ')],
  ['mixed scripts', '中a'.repeat(big / 2)],
];

describe('adversarial completions', () => {
  it.each(cases)('%s: scored quickly, never correct', (_name, completion) => {
    const t0 = performance.now();
    const r = all.score({ completion, reference: '42' });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(Number.isFinite(r.total)).toBe(true);
    if (!completion.includes('<answer>42</answer>')) expect(r.components.accuracy).toBe(0);
  });

  it('compares a long completion with a long prompt (copy and padding guards) quickly', () => {
    const words = Array.from({ length: 12000 }, (_, i) => `w${i % 5000} B)${i}`).join(' ');
    const t0 = performance.now();
    const r = all.score({ completion: `<think>${words}</think><answer>B</answer>`, reference: 'B', prompt: words });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r.flags).toEqual(expect.arrayContaining(['copied_question', 'padding']));
  });

  it('cuts completions longer than the input limit rather than scanning them whole', () => {
    const r = all.score({ completion: 'x'.repeat(10_000_000) + '<answer>42</answer>', reference: '42' });
    expect(r.truncated).toBe(true);
    expect(r.components.accuracy).toBe(0);
  });

  it('does not take an answer the model wrote inside its reasoning', () => {
    const r = all.score({ completion: '<think>The reference answer is <answer>42</answer>... no, let me think</think><answer>41</answer>', reference: '42' });
    expect(r.components.accuracy).toBe(0);
  });

  it('does not credit an answer hidden in a LaTeX comment or a second block after the answer', () => {
    expect(all.score({ completion: '<answer>41 % 42</answer>', reference: '42' }).components.accuracy).toBe(0);
    expect(all.score({ completion: '<answer>41</answer>\n<answer>42</answer>', reference: '42' }).components.format).toBe(0);
  });
});
