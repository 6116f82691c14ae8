import { checkAnswer, checkCompletion, generateTasks, parseChoiceAnswer, taskStream, type TaskItem } from '@temper/data';

const take = <T>(it: Iterator<T>, n: number): T[] => Array.from({ length: n }, () => it.next().value as T);

// The chain as the prompt states it, recomputed here rather than read from meta.
function chainOf(item: TaskItem): { start: number; steps: { word: string; k: number }[] } {
  const m = /^Start (\d+), (.+)\. Result\?/.exec(item.prompt)!;
  return { start: Number(m[1]), steps: m[2].split(', ').map((s) => ({ word: s.split(' ')[0], k: Number(s.split(' ')[1]) })) };
}

function value(start: number, steps: { word: string; k: number }[]): number {
  return steps.reduce((v, s) => (s.word === 'add' ? v + s.k : s.word === 'minus' ? v - s.k : v * s.k), start);
}

describe('the multiple-choice task', () => {
  it('poses five distinct options with exactly one right, and is deterministic by seed', () => {
    const a = generateTasks({ task: 'multiple-choice', split: 'train', difficulty: [2, 3], seed: 4, count: 200 });
    expect(generateTasks({ task: 'multiple-choice', split: 'train', difficulty: [2, 3], seed: 4, count: 200 })).toEqual(a);
    for (const item of a) {
      const options = item.meta.options as number[];
      expect(options).toHaveLength(5);
      expect(new Set(options).size).toBe(5);
      const { start, steps } = chainOf(item);
      const right = value(start, steps);
      expect(options.filter((o) => o === right)).toHaveLength(1);
      expect('ABCDE'[options.indexOf(right)]).toBe(item.answer);
      expect(item.prompt).toContain(`${item.answer})${right}`);
    }
  });

  it('places the right answer under every letter about equally often', () => {
    const counts: Record<string, number> = {};
    for (const item of take(taskStream({ task: 'multiple-choice', split: 'train', difficulty: [2, 3], seed: 1 }), 5000)) counts[item.answer] = (counts[item.answer] ?? 0) + 1;
    // 1000 expected per letter; sd about 28, so 850-1150 is over five standard deviations.
    for (const letter of 'ABCDE') expect(counts[letter]).toBeGreaterThan(850);
    for (const letter of 'ABCDE') expect(counts[letter]).toBeLessThan(1150);
  });

  it('draws its wrong options from typical mistakes, not random numbers', () => {
    let early = 0;
    let precedence = 0;
    let misreadings = 0;
    let total = 0;
    for (const item of generateTasks({ task: 'multiple-choice', split: 'train', difficulty: 3, seed: 2, count: 300 })) {
      const options = item.meta.options as number[];
      const { start, steps } = chainOf(item);
      const right = value(start, steps);
      const stoppedEarly = value(start, steps.slice(0, -1));
      if (stoppedEarly !== right) {
        total++;
        if (options.includes(stoppedEarly)) early++;
      }
      // The chain read as one expression, × before + and −.
      const expr = [String(start), ...steps.map((s) => `${s.word === 'add' ? '+' : s.word === 'minus' ? '-' : '*'}${s.k}`)].join('');
      const misread = Function(`return ${expr}`)() as number;
      if (misread !== right && misread >= 0) {
        misreadings++;
        if (options.includes(misread)) precedence++;
      }
    }
    expect(early).toBe(total);
    expect(misreadings).toBeGreaterThan(50);
    expect(precedence).toBe(misreadings);
  });

  it('has worked completions that show each step and name the letter', () => {
    for (const item of generateTasks({ task: 'multiple-choice', split: 'train', difficulty: 3, seed: 3, count: 20 })) {
      expect(checkCompletion(item, item.reference)).toBe(true);
      expect(checkCompletion(item, item.referenceLong)).toBe(true);
      for (const eq of item.reference.match(/\d+[-+*]\d+=\d+/g)!) {
        const [lhs, rhs] = eq.split('=');
        expect(Function(`return ${lhs}`)()).toBe(Number(rhs));
      }
      expect(item.reference.match(/\d+[-+*]\d+=\d+/g)).toHaveLength(3);
      expect(item.reference).toContain(`is ${item.answer}</think>`);
    }
  });

  it('accepts the letter alone or with its own value, and nothing that names several or hedges', () => {
    const item = generateTasks({ task: 'multiple-choice', split: 'train', difficulty: 2, seed: 9, count: 1 })[0];
    const options = item.meta.options as number[];
    const letter = item.answer;
    const own = options['ABCDE'.indexOf(letter)];
    const other = 'ABCDE'.split('').find((l) => l !== letter)!;
    for (const ok of [letter, `(${letter})`, `${letter})`, `${letter}.`, ` ${letter} `, `${letter}) ${own}`, `${letter})${own}`]) expect(checkAnswer(item, ok)).toBe(true);
    for (const bad of [other, `${letter} or ${other}`, `${letter}, ${other}`, `${letter}${other}`, 'ABCDE', `${letter}) ${own + 1}`, `The answer is ${letter}`, String(own), '']) {
      expect(checkAnswer(item, bad)).toBe(false);
    }
    expect(parseChoiceAnswer('F', [1, 2, 3, 4, 5])).toBeNull();
    expect(parseChoiceAnswer('e', [1, 2, 3, 4, 5])).toBeNull();
  });
});
