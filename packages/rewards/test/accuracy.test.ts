import { compileRewardSpec, RewardSpecError } from '@temper/rewards';

const spec = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1 }] });
const score = (completion: string, reference: string) => spec.score({ completion, reference });

describe('accuracy', () => {
  it.each([
    ['<think>6*7</think><answer>42</answer>', '42'],
    ['<answer>\\frac{1}{2}</answer>', '0.5'],
    ['The total is \\boxed{1,200} dollars.', '1200'],
    ['<answer>x = \\dfrac{3}{4}</answer>', '0.75'],
    ['<answer>(B)</answer>', 'B'],
    ['<answer>Answer: C</answer>', 'C'],
    ['<answer>(x+1)^2</answer>', 'x^2+2x+1'],
    ['<answer>x = 2 or x = 3</answer>', '2, 3'],
    ['<think>\\boxed{3}? hmm, no</think>\\boxed{4}', '4'],
    ['<think>a</think>\\boxed{4} so \\boxed{4.0}', '4'],
  ])('scores %s as correct for %s', (completion, reference) => {
    expect(score(completion, reference).components.accuracy).toBe(1);
  });

  it.each([
    // the reference appears only in the reasoning, not as the answer
    ['<think>could it be 42? no.</think><answer>41</answer>', '42', []],
    ['<think>42 is tempting</think>', '42', ['no_answer']],
    ['The answer is 42.', '42', ['no_answer']],
    ['I think it is 42 but \\boxed{43}', '42', []],
    // hedging and listing candidates
    ['<answer>42 or 43</answer>', '42', ['hedged']],
    ['<answer>x = 2 or x = 3</answer>', '2', ['hedged']],
    ['<answer>maybe 42</answer>', '42', ['hedged']],
    ['<answer>41, 42, 43</answer>', '42', []],
    ['<answer>\\boxed{41} \\boxed{42}</answer>', '42', ['multiple_answers']],
    ['<answer>A, B, C, D</answer>', 'B', []],
    ['<answer>\\pm 3</answer>', '3', ['hedged']],
    // the answer must be the answer, not something that mentions it
    ['<answer>not 42</answer>', '42', []],
    ['<answer>42 is wrong, it is 41</answer>', '42', []],
    ['<answer></answer> 42', '42', ['no_answer']],
    ['<answer>\\text{the reference is 42}</answer>', '42', []],
    // an answer only inside the reasoning, or a correction that leaves two answers
    ['<think>so \\boxed{42}</think>', '42', ['no_answer']],
    ['<think>then <answer>42</answer></think> hmm', '42', ['no_answer']],
    ['\\boxed{41} hmm, no: \\boxed{42}', '42', ['multiple_answers']],
    ['<answer>41</answer><answer>42</answer>', '42', ['multiple_answers']],
  ])('scores %s as wrong for %s', (completion, reference, flags) => {
    const r = score(completion, reference);
    expect(r.components.accuracy).toBe(0);
    expect(r.flags).toEqual(flags);
  });

  it('reports the extracted answer', () => {
    expect(score('<answer> 7 </answer>', '7').extractedAnswer).toBe('7');
    expect(score('nothing', '7').extractedAnswer).toBe('');
  });

  it('does not compare answers longer than maxAnswerChars', () => {
    const s = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1, options: { maxAnswerChars: 5 } }] });
    const r = s.score({ completion: '<answer>  42.000000 </answer>', reference: '42' });
    expect(r.components.accuracy).toBe(0);
    expect(r.flags).toContain('answer_too_long');
  });

  it('takes tolerances, sources, tag and pattern from its options', () => {
    const loose = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1, options: { relTolerance: 0.01 } }] });
    expect(loose.score({ completion: '<answer>3.14</answer>', reference: '\\pi' }).components.accuracy).toBe(1);
    expect(score('<answer>3.14</answer>', '\\pi').components.accuracy).toBe(0);

    const boxedOnly = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1, options: { sources: ['boxed'] } }] });
    expect(boxedOnly.score({ completion: '<answer>5</answer>', reference: '5' }).components.accuracy).toBe(0);

    const gsm = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1, options: { sources: [], pattern: '####\\s*(-?[\\d,]+)' } }] });
    expect(gsm.score({ completion: 'so 3 + 4 = 7\n#### 7', reference: '7' }).components.accuracy).toBe(1);
    expect(gsm.score({ completion: '<answer>7</answer>', reference: '7' }).components.accuracy).toBe(0);

    const tag = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1, options: { answerTag: 'final' } }] });
    expect(tag.score({ completion: '<final>7</final>', reference: '7' }).components.accuracy).toBe(1);
  });

  it('refuses bad options, naming them', () => {
    const bad = (options: Record<string, unknown>) => () => compileRewardSpec({ components: [{ name: 'accuracy', weight: 1, options }] });
    expect(bad({ pattern: '(' })).toThrow('spec.components[0].options.pattern: not a valid regular expression');
    expect(bad({ sources: ['pattern'] })).toThrow('spec.components[0].options.pattern');
    expect(bad({ sources: ['elsewhere'] })).toThrow('spec.components[0].options.sources[0]: must be one of');
    expect(bad({ relTolerance: 'small' })).toThrow('spec.components[0].options.relTolerance: expected a number');
    expect(bad({ relTolerance: -1 })).toThrow('at least 0');
    expect(bad({ answerTag: '<x>' })).toThrow(RewardSpecError);
    expect(bad({ colour: 'red' })).toThrow('spec.components[0].options.colour: unknown option');
  });
});
