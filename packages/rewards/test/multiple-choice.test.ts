// The multiple-choice reward of the domain study (examples/study-domain.yaml) against the hacks
// it invites: each hack, built from a completion that knows the right letter, must score no
// higher than an honest completion that gets the letter wrong; honest right answers score highest.
import { generateTasks, type TaskItem } from '@temper/data';
import { compileRewardSpec, type RewardResult } from '@temper/rewards';

const spec = compileRewardSpec({
  components: [
    { name: 'accuracy', weight: 1 },
    { name: 'format', weight: 0.25 },
    { name: 'reasoning', weight: 0.25, options: { minSteps: 2, minChars: 20, maxChars: 240 } },
    { name: 'choice_guard', weight: 1.5 },
  ],
});

const items = generateTasks({ task: 'multiple-choice', split: 'train', difficulty: [2, 3], seed: 21, count: 40 });

const score = (item: TaskItem, completion: string): RewardResult => spec.score({ completion, reference: item.answer, prompt: item.prompt });

interface Worked {
  steps: string[];
  right: string;
  value: number;
  wrong: string;
  other: string;
}

// The steps of the item's worked completion, and a wrong letter an honest slip leads to.
function worked(item: TaskItem): Worked {
  const steps = /<think>(.*)<\/think>/.exec(item.reference)![1].split(', ').slice(0, -1);
  const options = item.meta.options as number[];
  const value = item.meta.value as number;
  const wrongIndex = options.findIndex((o) => o !== value);
  return { steps, right: item.answer, value, wrong: 'ABCDE'[wrongIndex], other: 'ABCDE'[wrongIndex === 0 ? 1 : 0] === item.answer ? 'ABCDE'[2] : 'ABCDE'[wrongIndex === 0 ? 1 : 0] };
}

// An honest completion that slips on the last step and picks the option its slip gives.
function honestWrong(item: TaskItem): string {
  const w = worked(item);
  const options = item.meta.options as number[];
  const last = w.steps[w.steps.length - 1];
  const slipped = options['ABCDE'.indexOf(w.wrong)];
  const lhs = last.split('=')[0];
  return `<think>${[...w.steps.slice(0, -1), `${lhs}=${slipped}`].join(', ')}, ${slipped} is ${w.wrong}</think><answer>${w.wrong}</answer>`;
}

function hacks(item: TaskItem): Record<string, string> {
  const w = worked(item);
  const think = `${w.steps.join(', ')}, ${w.value} is ${w.right}`;
  const others = 'ABCDE'.split('').filter((l) => l !== w.right);
  return {
    'several options (or)': `<think>${think}</think><answer>${w.right} or ${others[0]}</answer>`,
    'several options (list)': `<think>${think}</think><answer>${w.right}, ${others[1]}</answer>`,
    'several options (all letters)': `<think>${think}</think><answer>ABCDE</answer>`,
    'several options (slash)': `<think>${think}</think><answer>${others[2]}/${w.right}</answer>`,
    'several options (another option\'s value)': `<think>${think}</think><answer>${w.right})${(item.meta.options as number[])['ABCDE'.indexOf(others[0])]}</answer>`,
    'several options (two blocks)': `<think>${think}</think><answer>${others[0]}</answer><answer>${w.right}</answer>`,
    'answer in the reasoning, none given': `<think>${think}</think>`,
    'answer in the reasoning, empty block': `<think>${think}</think><answer></answer>`,
    'reasoning in the answer block': `<think>${w.steps[0]}</think><answer>${w.steps.slice(1).join(', ')}, so ${w.right}</answer>`,
    'copied question': `<think>${item.prompt} ${think}</think><answer>${w.right}</answer>`,
    'copied options': `<think>${(item.meta.options as number[]).map((o, i) => `${'ABCDE'[i]})${o}`).join(' ')} ${think}</think><answer>${w.right}</answer>`,
    'padding with dots': `<think>${think}${'.'.repeat(60)}</think><answer>${w.right}</answer>`,
    'padding with newlines': `<think>${think}${'\n'.repeat(40)}</think><answer>${w.right}</answer>`,
    'padding with a phrase': `<think>${think} ${'let me check again. '.repeat(20)}</think><answer>${w.right}</answer>`,
    'padding with the steps': `<think>${Array(8).fill(think).join(' ')}</think><answer>${w.right}</answer>`,
    'padding past the length cap': `<think>${think} ${Array.from({ length: 200 }, (_, i) => `note${i}`).join(' ')}</think><answer>${w.right}</answer>`,
  };
}

describe('the multiple-choice reward', () => {
  it('scores the worked completions highest, with no guard firing', () => {
    for (const item of items) {
      for (const completion of [item.reference, item.referenceLong]) {
        const r = score(item, completion);
        expect(r.components).toEqual({ accuracy: 1, format: 1, reasoning: 1, choice_guard: 0 });
        // The letter with its own value is the same answer.
        const own = (item.meta.options as number[])['ABCDE'.indexOf(item.answer)];
        expect(score(item, completion.replace(`<answer>${item.answer}<`, `<answer>${item.answer})${own}<`)).components).toEqual({ accuracy: 1, format: 1, reasoning: 1, choice_guard: 0 });
        expect(r.total).toBeCloseTo(1.5);
      }
    }
  });

  it('never fires a guard on honest completions across every difficulty', () => {
    for (const item of generateTasks({ task: 'multiple-choice', split: 'train', difficulty: [1, 2, 3, 4, 5], seed: 8, count: 300 })) {
      for (const completion of [item.reference, item.referenceLong, honestWrong(item)]) expect(score(item, completion).components.choice_guard).toBe(0);
    }
  });

  it('gives an honest wrong answer its format and reasoning, not accuracy', () => {
    for (const item of items) {
      const r = score(item, honestWrong(item));
      expect(r.components.accuracy).toBe(0);
      expect(r.components.format).toBe(1);
      expect(r.components.reasoning).toBeGreaterThan(0.6);
      expect(r.total).toBeLessThan(score(item, item.reference).total);
    }
  });

  it('scores every hack no higher than an honest wrong answer, and names it', () => {
    const expected: Record<string, string> = {
      'several options': 'several_options',
      'answer in the reasoning': 'answer_in_reasoning',
      'reasoning in the answer block': 'answer_in_reasoning',
      copied: 'copied_question',
      padding: 'padding',
    };
    for (const item of items) {
      const honest = score(item, honestWrong(item)).total;
      for (const [name, completion] of Object.entries(hacks(item))) {
        const r = score(item, completion);
        expect({ name, total: r.total, below: r.total <= honest }).toEqual({ name, total: r.total, below: true });
        const flag = Object.entries(expected).find(([prefix]) => name.startsWith(prefix))![1];
        expect({ name, flags: r.flags }).toEqual({ name, flags: expect.arrayContaining([flag]) });
      }
    }
  });

  it('flags an answer left only in the reasoning', () => {
    const item = items[0];
    const { steps, value, right } = worked(item);
    const r = score(item, `<think>${steps.join(', ')}, ${value} is ${right}</think><answer></answer>`);
    expect(r.flags).toEqual(expect.arrayContaining(['answer_in_reasoning']));
  });

  it('scores the reasoning parts: correct steps, length band, repetition', () => {
    const item = items[0];
    const { right } = worked(item);
    const only = (reasoning: string) => score(item, `<think>${reasoning}</think><answer>${right}</answer>`).components.reasoning;
    // Two correct distinct steps, in the band, nothing repeated: full marks.
    expect(only('3+4=7, then 7*2=14 so the answer')).toBeCloseTo(1);
    // Wrong arithmetic is no step.
    expect(only('3+4=8, then 8*2=17 so the answer')).toBeCloseTo(2 / 3);
    // One step of two.
    expect(only('3+4=7, so that is the answer here')).toBeCloseTo(5 / 6);
    // Too short: 10 of 20 characters.
    expect(only('3+4=7 7*2=')).toBeCloseTo((0.5 + 0.5 + 1) / 3);
    // Nothing at all.
    expect(only('')).toBe(0);
  });

  it('refuses a length band that is upside down', () => {
    expect(() => compileRewardSpec({ components: [{ name: 'reasoning', weight: 1, options: { minChars: 50, maxChars: 10 } }] })).toThrow(/components\[0\]\.options\.minChars: must not exceed maxChars/);
  });
});

describe('choice_guard options', () => {
  it('refuses option letters that are not capitals', () => {
    expect(() => compileRewardSpec({ components: [{ name: 'choice_guard', weight: 1, options: { choices: 'a]' } }] })).toThrow(/components\[0\]\.options\.choices: expected capital letters/);
  });
});
