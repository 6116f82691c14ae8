import { extractAnswer, ExtractOptions } from '@temper/rewards';

const both: ExtractOptions = { sources: ['answer', 'boxed'], answerTag: 'answer' };

describe('answer extraction', () => {
  it.each([
    ['<think>x</think><answer>42</answer>', '42', 'answer'],
    ['<answer> 42 </answer>', '42', 'answer'],
    ['so the result is \\boxed{42}.', '42', 'boxed'],
    ['\\boxed{\\frac{1}{2}}', '\\frac{1}{2}', 'boxed'],
    ['\\boxed{\\frac{\\sqrt{3}}{\\left(2\\right)}}', '\\frac{\\sqrt{3}}{\\left(2\\right)}', 'boxed'],
    ['\\boxed {7}', '7', 'boxed'],
    ['\\boxed{\\{1, 2\\}}', '\\{1, 2\\}', 'boxed'],
    ['<answer>The answer is \\boxed{5}</answer>', '5', 'boxed'],
    ['<think>I will write <answer> tags</think><answer>9</answer>', '9', 'answer'],
    ['<think>\\boxed{3}? wait, I made an error.</think> \\boxed{4}', '4', 'boxed'],
    ['<think>maybe <answer>1</answer></think><answer>2</answer>', '2', 'answer'],
    ['<answer>\\boxed{5}</answer>', '5', 'boxed'],
    ['<answer>\\boxed{5}</answer> \\boxed{ 5 }', '5', 'boxed'],
    ['reasoning</think><answer>6</answer>', '6', 'answer'],
  ])('%s -> %s', (text, answer, source) => {
    expect(extractAnswer(text, both)).toMatchObject({ answer, source, multiple: false });
  });

  it.each([
    ['no answer at all, though 42 is on my mind'],
    ['<think>the answer is 42</think>'],
    ['<answer></answer>'],
    ['<answer>   </answer>'],
    ['\\boxed{}'],
    ['\\boxed{42'],
    ['<answer>42'],
    ['42</answer>'],
    ['\\boxed 42'],
    ['<think>so it is \\boxed{42}</think>'],
    ['<think>so <answer>42</answer></think> done'],
    ['<think>\\boxed{42} and the reasoning never ends'],
  ])('finds no answer in %s', (text) => {
    expect(extractAnswer(text, both)).toBeNull();
  });

  it.each([
    ['<answer>\\boxed{3} or \\boxed{4}</answer>', '4'],
    ['\\boxed{3} wait, I made an error. \\boxed{4}', '4'],
    ['<answer>1</answer> on reflection <answer>2</answer>', '2'],
    ['<answer>1</answer> but really \\boxed{2}', '2'],
    ['\\boxed{2} so <answer>3</answer>', '3'],
    ['<think>x</think>\\boxed{1} \\boxed{2} \\boxed{3}', '3'],
  ])('flags an answer section with different answers: %s', (text, last) => {
    expect(extractAnswer(text, both)).toMatchObject({ answer: last, multiple: true });
  });

  it('lets the same answer be written twice, and counts the reasoning only without a reasoning tag', () => {
    expect(extractAnswer('<think>\\boxed{1}</think>\\boxed{2}', both)).toMatchObject({ answer: '2', multiple: false });
    expect(extractAnswer('<think>\\boxed{1}</think>\\boxed{2}', { ...both, reasoningTag: '' })).toMatchObject({ answer: '2', multiple: true });
    expect(extractAnswer('<think>\\boxed{1}</think>', { ...both, reasoningTag: '' })).toMatchObject({ answer: '1' });
    expect(extractAnswer('<answer>\\boxed{3} = \\boxed{3}</answer>', both)).toMatchObject({ answer: '3', multiple: false });
  });

  it('only looks where it is told to', () => {
    expect(extractAnswer('<answer>1</answer> \\boxed{2}', { ...both, sources: ['answer'] })).toMatchObject({ answer: '1' });
    expect(extractAnswer('<answer>1</answer>', { ...both, sources: ['boxed'] })).toBeNull();
    expect(extractAnswer('<result>7</result>', { ...both, answerTag: 'result' })).toMatchObject({ answer: '7' });
  });

  it('uses a configured pattern, last match winning', () => {
    const opts: ExtractOptions = { sources: ['pattern'], answerTag: 'answer', pattern: /Final answer:\s*(\S+)/ };
    expect(extractAnswer('Final answer: 3\nFinal answer: 5', opts)).toMatchObject({ answer: '5', source: 'pattern' });
    expect(extractAnswer('nothing', opts)).toBeNull();
    const whole: ExtractOptions = { sources: ['pattern'], answerTag: 'answer', pattern: /#### -?\d+/ };
    expect(extractAnswer('work\n#### 12', whole)).toMatchObject({ answer: '#### 12' });
  });
});
