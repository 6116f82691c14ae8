// Multiple-choice reasoning: a short chain of operations on a starting number, and five
// options A-E of which one is the result. The four wrong options are what typical mistakes
// give (stopping a step early, skipping a step, reading the chain as one expression with
// × before + and −, flipping an operation, a slip of one or ten in the last step), so
// guessing by "the option that looks computed" does not help and a model has to do the
// steps. The answer is the option letter; the worked completions compute each step and
// then name the letter.
import type { Rng } from '../rng';
import { parseChoiceAnswer } from './answers';
import type { Problem, TaskGenerator } from './types';

export const choiceLetters = 'ABCDE';

type Op = '+' | '-' | '*';

interface Level {
  steps: number;
  start: [number, number];
  addend: [number, number];
  factor: [number, number];
  maxValue: number;
}

const levels: readonly Level[] = [
  { steps: 1, start: [2, 9], addend: [1, 9], factor: [2, 3], maxValue: 30 },
  { steps: 2, start: [2, 9], addend: [1, 9], factor: [2, 4], maxValue: 60 },
  { steps: 3, start: [2, 20], addend: [1, 20], factor: [2, 5], maxValue: 200 },
  { steps: 4, start: [2, 30], addend: [1, 30], factor: [2, 6], maxValue: 500 },
  { steps: 5, start: [2, 50], addend: [1, 50], factor: [2, 9], maxValue: 999 },
];

interface Step {
  op: Op;
  k: number;
}

const words: Record<Op, string> = { '+': 'add', '-': 'minus', '*': 'times' };

function apply(op: Op, v: number, k: number): number {
  return op === '+' ? v + k : op === '-' ? v - k : v * k;
}

/** The value of the chain applied in order (undefined steps are skipped). */
function run(start: number, chain: readonly (Step | undefined)[]): number {
  return chain.reduce((v, s) => (s ? apply(s.op, v, s.k) : v), start);
}

/** The chain misread as one expression, `start op k op k …`, with × binding first. */
function withPrecedence(start: number, chain: readonly Step[]): number {
  const terms: number[] = [start];
  const signs: number[] = [1];
  for (const s of chain) {
    if (s.op === '*') terms[terms.length - 1] *= s.k;
    else {
      terms.push(s.k);
      signs.push(s.op === '+' ? 1 : -1);
    }
  }
  return terms.reduce((a, t, i) => a + signs[i] * t, 0);
}

const flipped: Record<Op, Op> = { '+': '-', '-': '+', '*': '+' };

/** Wrong results from typical mistakes, most telling first. */
function mistakes(start: number, chain: readonly Step[], rng: Rng): number[] {
  const n = chain.length;
  const out = [run(start, chain.slice(0, -1)), withPrecedence(start, chain)];
  const skipped = rng.int(0, n - 1);
  out.push(run(start, chain.map((s, i) => (i === skipped ? undefined : s))));
  const flip = rng.int(0, n - 1);
  out.push(run(start, chain.map((s, i) => (i === flip ? { op: flipped[s.op], k: s.k } : s))));
  const right = run(start, chain);
  out.push(right + rng.pick([1, -1, 10, -10]));
  return [...out.slice(0, 2), ...rng.shuffle(out.slice(2))];
}

function pickOptions(right: number, wrong: readonly number[], rng: Rng): number[] {
  const chosen: number[] = [];
  for (const v of wrong) if (v >= 0 && v !== right && !chosen.includes(v) && chosen.length < 4) chosen.push(v);
  // Too few distinct mistakes (short chains often coincide): near misses fill the rest.
  for (let d = 1; chosen.length < 4; d++) {
    for (const v of [right + d, right - d]) if (v >= 0 && !chosen.includes(v) && chosen.length < 4) chosen.push(v);
  }
  return rng.shuffle([right, ...chosen]);
}

/** The canonical form: the chain alone (the same chain with its options shuffled is the same problem). */
export function multipleChoiceCanonical(start: number, chain: readonly Step[]): string {
  return `multiple-choice:${start}${chain.map((s) => `${s.op}${s.k}`).join('')}`;
}

export const multipleChoiceTask: TaskGenerator = {
  name: 'multiple-choice',
  maxDifficulty: levels.length,

  sample(rng: Rng, difficulty: number): Problem {
    const level = levels[difficulty - 1];
    if (!level) throw new RangeError(`multiple-choice difficulty must be 1..${levels.length}, got ${difficulty}`);
    const start = rng.int(...level.start);
    const chain: (Step & { before: number; after: number })[] = [];
    let v = start;
    while (chain.length < level.steps) {
      const op = rng.pick<Op>(['+', '-', '*']);
      const k = op === '*' ? rng.int(...level.factor) : rng.int(...level.addend);
      const after = apply(op, v, k);
      // Stay in whole numbers from 0 to the level's ceiling; redraw otherwise.
      if (after < 0 || after > level.maxValue) continue;
      chain.push({ op, k, before: v, after });
      v = after;
    }
    const options = pickOptions(v, mistakes(start, chain, rng), rng);
    const letter = choiceLetters[options.indexOf(v)];
    // Compact enough for a character-level model: level 1 fits in 64 characters.
    const listed = options.map((o, i) => `${choiceLetters[i]})${o}`).join(' ');
    const prompt = `Start ${start}, ${chain.map((s) => `${words[s.op]} ${s.k}`).join(', ')}. Result? ${listed}`;
    return {
      prompt,
      answer: letter,
      steps: [...chain.map((s) => `${s.before}${s.op}${s.k}=${s.after}`), `${v} is ${letter}`],
      longSteps: [
        `Start from ${start} and apply each step in order.`,
        ...chain.map((s) => `${words[s.op] === 'add' ? 'Adding' : words[s.op] === 'minus' ? 'Subtracting' : 'Multiplying by'} ${s.k}: ${s.before}${s.op}${s.k}=${s.after}.`),
        `The result is ${v}, which is option ${letter}.`,
      ],
      canonical: multipleChoiceCanonical(start, chain),
      meta: { start, ops: chain.map((s) => s.op).join(''), operands: chain.map((s) => s.k), options, value: v },
    };
  },

  check(item, answer) {
    const options = item.meta.options;
    return parseChoiceAnswer(answer, Array.isArray(options) ? options : []) === item.answer;
  },
};
