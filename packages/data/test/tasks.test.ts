import {
  checkAnswer,
  checkCompletion,
  formatTaskPrompt,
  generateTasks,
  parseCompletion,
  splitBucket,
  splitOf,
  taskMessages,
  taskNames,
  taskStream,
  verifyCountdown,
  type TaskItem,
  type TaskName,
} from '@temper/data';

const take = <T>(it: Iterator<T>, n: number): T[] => Array.from({ length: n }, () => it.next().value as T);

// Independent recomputation of each task's answer from the prompt text alone, so a bug in
// a generator's bookkeeping cannot hide behind the same bookkeeping in a check.
function recompute(item: TaskItem): string {
  const p = item.prompt;
  switch (item.task) {
    case 'arithmetic': {
      const sentences = p.split(/(?<=\.) /);
      let v = Number(/has (\d+) /.exec(sentences[0])![1]);
      for (const s of sentences.slice(1, -1)) {
        let m: RegExpExecArray | null;
        if ((m = /(?:gets|finds|buys|wins) (\d+) more\./.exec(s))) v += Number(m[1]);
        else if ((m = /(?:gives away|loses|sells|uses) (\d+)\./.exec(s))) v -= Number(m[1]);
        else if (/pile doubles/.test(s)) v *= 2;
        else if (/pile triples/.test(s)) v *= 3;
        else if ((m = /ends up with (\d+) times as many/.exec(s))) v *= Number(m[1]);
        else if ((m = /splits them into (\d+) equal piles/.exec(s))) {
          expect(v % Number(m[1])).toBe(0);
          v /= Number(m[1]);
        } else throw new Error(`unrecognised sentence: ${s}`);
        expect(v).toBeGreaterThanOrEqual(0);
      }
      expect(sentences[sentences.length - 1]).toMatch(/^How many \w+ now\?$/);
      return String(v);
    }
    case 'modular': {
      const m = /^What is (.+) mod (\d+)\?$/.exec(p)!;
      // Only digits, + * ^ and parentheses reach this evaluation.
      const expr = m[1].replace(/\^/g, '**');
      expect(expr).toMatch(/^[\d+*()]+$/);
      const value = BigInt(Function(`return (${expr.replace(/(\d+)/g, '$1n')})`)() as bigint);
      return String(value % BigInt(m[2]));
    }
    case 'sorting': {
      const m = /^Sort (ascending|descending): (.+)$/.exec(p)!;
      const nums = m[2].split(' ').map(Number);
      nums.sort((a, b) => (m[1] === 'ascending' ? a - b : b - a));
      return nums.join(' ');
    }
    case 'multiple-choice': {
      const m = /^Start (\d+), (.+)\. Result\? (.+)$/.exec(p)!;
      let v = Number(m[1]);
      for (const step of m[2].split(', ')) {
        const [word, k] = step.split(' ');
        v = word === 'add' ? v + Number(k) : word === 'minus' ? v - Number(k) : word === 'times' ? v * Number(k) : NaN;
      }
      const options = [...m[3].matchAll(/([A-E])\)(\d+)/g)].map((o) => ({ letter: o[1], value: Number(o[2]) }));
      expect(options.map((o) => o.letter).join('')).toBe('ABCDE');
      const right = options.filter((o) => o.value === v);
      expect(right).toHaveLength(1);
      return right[0].letter;
    }
    case 'countdown': {
      const m = /^Using ([\d, ]+) once each, make (\d+)\.$/.exec(p)!;
      const numbers = m[1].split(', ').map(Number);
      expect(numbers).toEqual(item.meta.numbers);
      expect(Number(m[2])).toBe(item.meta.target);
      expect(verifyCountdown(item.answer, numbers, Number(m[2]))).toEqual({ ok: true, value: m[2] });
      return item.answer;
    }
  }
}

describe('built-in tasks', () => {
  it('give the same items for the same seed and different items for another', () => {
    for (const task of taskNames) {
      const a = generateTasks({ task, split: 'train', difficulty: [1, 2, 3], seed: 7, count: 30 });
      const b = generateTasks({ task, split: 'train', difficulty: [1, 2, 3], seed: 7, count: 30 });
      const c = generateTasks({ task, split: 'train', difficulty: [1, 2, 3], seed: 8, count: 30 });
      expect(b).toEqual(a);
      expect(c.map((x) => x.id)).not.toEqual(a.map((x) => x.id));
    }
  });

  it('have answers that recompute from the prompt, and references that pass the checker', () => {
    for (const task of taskNames) {
      for (let difficulty = 1; difficulty <= 5; difficulty++) {
        for (const split of ['train', 'eval'] as const) {
          for (const item of generateTasks({ task, split, difficulty, seed: `check-${difficulty}`, count: 12 })) {
            expect(item.task).toBe(task);
            expect(item.difficulty).toBe(difficulty);
            expect(item.split).toBe(split);
            expect(splitOf(item.canonical)).toBe(split);
            expect(recompute(item)).toBe(item.answer);
            for (const ref of [item.reference, item.referenceLong]) {
              const parsed = parseCompletion(ref);
              expect(parsed.wellFormed).toBe(true);
              expect(parsed.answer).toBe(item.answer);
              expect(checkCompletion(item, ref)).toBe(true);
            }
          }
        }
      }
    }
  });

  it('reject wrong answers', () => {
    for (const task of taskNames) {
      for (const item of generateTasks({ task, split: 'train', difficulty: 2, seed: 3, count: 20 })) {
        expect(checkAnswer(item, '')).toBe(false);
        expect(checkAnswer(item, 'banana')).toBe(false);
        if (task !== 'countdown') expect(checkAnswer(item, `${item.answer} 1`)).toBe(false);
      }
    }
    const arith = generateTasks({ task: 'arithmetic', split: 'train', difficulty: 1, seed: 1, count: 1 })[0];
    const n = Number(arith.answer);
    expect(checkAnswer(arith, String(n + 1))).toBe(false);
    expect(checkAnswer(arith, ` +${n}. `)).toBe(true);
    const sorted = generateTasks({ task: 'sorting', split: 'train', difficulty: 3, seed: 1, count: 1 })[0];
    expect(checkAnswer(sorted, sorted.answer.split(' ').join(', '))).toBe(true);
    expect(checkAnswer(sorted, sorted.answer.split(' ').reverse().join(' '))).toBe(false);
  });

  it('keep the easiest level short enough for a tiny character-level model', () => {
    for (const task of taskNames) {
      for (const item of generateTasks({ task, split: 'train', difficulty: 1, seed: 5, count: 50 })) {
        expect(item.prompt.length).toBeLessThanOrEqual(64);
        expect(item.reference.length).toBeLessThanOrEqual(48);
        expect(item.answer.length).toBeLessThanOrEqual(6);
      }
    }
  });

  it('grade difficulty: harder levels have longer reasoning', () => {
    for (const task of taskNames) {
      const meanRef = (d: number) => {
        const items = generateTasks({ task, split: 'train', difficulty: d, seed: 11, count: 40 });
        return items.reduce((s, x) => s + x.reference.length, 0) / items.length;
      };
      expect(meanRef(5)).toBeGreaterThan(meanRef(1) * 1.4);
    }
  });

  it('never share a problem between train and eval, across seeds and difficulties', () => {
    for (const task of taskNames) {
      const train = new Set<string>();
      const evalSet = new Set<string>();
      for (let seed = 0; seed < 4; seed++) {
        for (let d = 1; d <= 5; d++) {
          for (const x of take(taskStream({ task, split: 'train', difficulty: d, seed }), 150)) train.add(x.canonical);
          for (const x of take(taskStream({ task, split: 'eval', difficulty: d, seed }), 40)) evalSet.add(x.canonical);
        }
      }
      expect(evalSet.size).toBeGreaterThan(20);
      for (const c of evalSet) expect(train.has(c)).toBe(false);
    }
  });

  it('keep a smaller eval fraction disjoint from a larger train fraction', () => {
    const train = take(taskStream({ task: 'arithmetic', split: 'train', difficulty: [1, 2], seed: 1, heldOutFraction: 0.3 }), 500);
    const evalItems = take(taskStream({ task: 'arithmetic', split: 'eval', difficulty: [1, 2], seed: 2, heldOutFraction: 0.1 }), 100);
    const trainKeys = new Set(train.map((x) => x.canonical));
    for (const e of evalItems) {
      expect(trainKeys.has(e.canonical)).toBe(false);
      expect(splitBucket(e.canonical)).toBeLessThan(1000);
    }
  });

  it('hold out about the stated share of problems', () => {
    // Over all distinct level-1 arithmetic problems (126 of them), the eval share is near 20%.
    const all = new Set<string>();
    for (const split of ['train', 'eval'] as const) for (const x of take(taskStream({ task: 'arithmetic', split, difficulty: 1, seed: 0 }), 3000)) all.add(x.canonical);
    expect(all.size).toBe(126);
    const evalShare = [...all].filter((c) => splitOf(c) === 'eval').length / all.size;
    // Binomial(126, 0.2): sd = 0.036, so 0.2 +- 0.11 is three standard deviations.
    expect(Math.abs(evalShare - 0.2)).toBeLessThan(0.11);
  });

  it('give distinct problems in a generated set and say when a split runs out', () => {
    const items = generateTasks({ task: 'arithmetic', split: 'eval', difficulty: 1, seed: 1, count: 15 });
    expect(new Set(items.map((x) => x.canonical)).size).toBe(15);
    expect(() => generateTasks({ task: 'arithmetic', split: 'eval', difficulty: 1, seed: 1, count: 500 })).toThrow(/only \d+ distinct eval problems/);
  });

  it('refuse unknown tasks and difficulties', () => {
    expect(() => generateTasks({ task: 'chess' as TaskName, split: 'train', difficulty: 1, seed: 1, count: 1 })).toThrow(/unknown task "chess"/);
    expect(() => generateTasks({ task: 'countdown', split: 'train', difficulty: 6, seed: 1, count: 1 })).toThrow(/difficulty must be 1..5/);
    expect(() => generateTasks({ task: 'countdown', split: 'train', difficulty: [], seed: 1, count: 1 })).toThrow(/no difficulty/);
  });

  it('render prompts compact or with the format instruction', () => {
    const item = generateTasks({ task: 'modular', split: 'eval', difficulty: 1, seed: 1, count: 1 })[0];
    expect(formatTaskPrompt(item)).toBe(item.prompt);
    expect(formatTaskPrompt(item, 'instructed')).toContain('<answer></answer>');
    expect(taskMessages(item)).toEqual([{ role: 'user', content: item.prompt }]);
  });
});

describe('parseCompletion', () => {
  it('separates well-formed completions from lenient reads', () => {
    expect(parseCompletion('<think>1+1=2</think><answer>2</answer>')).toEqual({ wellFormed: true, reasoning: '1+1=2', answer: '2' });
    expect(parseCompletion(' <think>x</think>\n<answer> 2 </answer>\n')).toMatchObject({ wellFormed: true, answer: '2' });
    expect(parseCompletion('<answer>2</answer>')).toEqual({ wellFormed: false, reasoning: null, answer: '2' });
    expect(parseCompletion('<think>a</think><answer>1</answer><answer>3</answer>')).toMatchObject({ wellFormed: false, answer: '3' });
    expect(parseCompletion('<think>a</think><answer>1')).toMatchObject({ wellFormed: false, answer: null });
    expect(parseCompletion('<think><answer>5</answer></think><answer>5</answer>')).toMatchObject({ wellFormed: false });
  });
});
