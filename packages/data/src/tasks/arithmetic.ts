// Multi-step arithmetic word problems: someone starts with a count of things and a chain of
// events changes it. Difficulty 1 is one addition or subtraction of single digits in a prompt
// of about fifty characters, which a character-level model of a few million parameters
// learns in minutes; each level adds steps, operations and larger numbers.
import type { Rng } from '../rng';
import { parseIntegerAnswer } from './answers';
import type { Problem, TaskGenerator } from './types';

export type ArithmeticOp = '+' | '-' | '*' | '/';
type Op = ArithmeticOp;

interface Level {
  steps: number;
  ops: readonly Op[];
  /** Range of the starting count. */
  start: [number, number];
  /** Range of an added or subtracted amount. */
  addend: [number, number];
  /** Range of a multiplier or divisor. */
  factor: [number, number];
  /** No intermediate value may exceed this. */
  maxValue: number;
}

const levels: readonly Level[] = [
  { steps: 1, ops: ['+', '-'], start: [1, 9], addend: [1, 9], factor: [2, 2], maxValue: 18 },
  { steps: 1, ops: ['+', '-', '*'], start: [2, 20], addend: [1, 20], factor: [2, 9], maxValue: 99 },
  { steps: 2, ops: ['+', '-', '*'], start: [2, 20], addend: [1, 20], factor: [2, 5], maxValue: 99 },
  { steps: 3, ops: ['+', '-', '*', '/'], start: [2, 50], addend: [1, 30], factor: [2, 6], maxValue: 300 },
  { steps: 4, ops: ['+', '-', '*', '/'], start: [10, 99], addend: [1, 99], factor: [2, 9], maxValue: 999 },
];

const names = ['Ann', 'Bob', 'Cy', 'Dee', 'Eve', 'Max', 'Sam', 'Tom', 'Zoe', 'Kim', 'Lee', 'Ray'];
const things = ['pens', 'cards', 'coins', 'eggs', 'books', 'balls', 'cups', 'keys', 'shells', 'stamps'];

function sentence(op: Op, k: number, who: string, rng: Rng): string {
  switch (op) {
    case '+':
      return `${who} ${rng.pick(['gets', 'finds', 'buys', 'wins'])} ${k} more.`;
    case '-':
      return `${who} ${rng.pick(['gives away', 'loses', 'sells', 'uses'])} ${k}.`;
    case '*':
      return k === 2 ? `${who}'s pile doubles.` : k === 3 ? `${who}'s pile triples.` : `${who} ends up with ${k} times as many.`;
    case '/':
      return `${who} splits them into ${k} equal piles and keeps one.`;
  }
}

function explain(op: Op, k: number, before: number, after: number): string {
  switch (op) {
    case '+':
      return `Adding ${k} gives ${before}+${k}=${after}.`;
    case '-':
      return `Taking away ${k} leaves ${before}-${k}=${after}.`;
    case '*':
      return `${k} times as many is ${before}*${k}=${after}.`;
    case '/':
      return `One of ${k} equal piles is ${before}/${k}=${after}.`;
  }
}

function apply(op: Op, v: number, k: number): number {
  return op === '+' ? v + k : op === '-' ? v - k : op === '*' ? v * k : v / k;
}

// Whether `k` is an allowed operand for `op` on value `v` at this level.
function operandFits(level: Level, op: Op, v: number, k: number): boolean {
  const r = apply(op, v, k);
  if (op === '-') return r >= 0;
  if (op === '/') return v % k === 0 && r >= 1;
  return r <= level.maxValue;
}

function candidates(level: Level, op: Op, v: number): number[] {
  const [lo, hi] = op === '+' || op === '-' ? level.addend : level.factor;
  const out: number[] = [];
  for (let k = lo; k <= hi; k++) if (operandFits(level, op, v, k)) out.push(k);
  return out;
}

/** The canonical form of a problem: the start and each operation in order ("arithmetic:7+3-2"). */
export function arithmeticCanonical(start: number, chain: readonly { op: Op; k: number }[]): string {
  return `arithmetic:${start}${chain.map((c) => `${c.op}${c.k}`).join('')}`;
}

export const arithmeticTask: TaskGenerator = {
  name: 'arithmetic',
  maxDifficulty: levels.length,

  sample(rng: Rng, difficulty: number): Problem {
    const level = levels[difficulty - 1];
    if (!level) throw new RangeError(`arithmetic difficulty must be 1..${levels.length}, got ${difficulty}`);
    const start = rng.int(...level.start);
    const chain: { op: Op; k: number; before: number; after: number }[] = [];
    let v = start;
    while (chain.length < level.steps) {
      // Some ops can be impossible at a value (e.g. dividing a prime); others always remain.
      const options = level.ops.map((op) => ({ op, ks: candidates(level, op, v) })).filter((o) => o.ks.length > 0);
      const { op, ks } = rng.pick(options);
      const k = rng.pick(ks);
      const after = apply(op, v, k);
      chain.push({ op, k, before: v, after });
      v = after;
    }
    const who = rng.pick(names);
    const what = rng.pick(things);
    const prompt = [`${who} has ${start} ${what}.`, ...chain.map((c) => sentence(c.op, c.k, who, rng)), `How many ${what} now?`].join(' ');
    const answer = String(v);
    return {
      prompt,
      answer,
      steps: chain.map((c) => `${c.before}${c.op}${c.k}=${c.after}`),
      longSteps: [
        `${who} starts with ${start} ${what}.`,
        ...chain.map((c) => explain(c.op, c.k, c.before, c.after)),
        `So ${who} has ${answer} ${what}.`,
      ],
      canonical: arithmeticCanonical(start, chain),
      meta: { start, ops: chain.map((c) => c.op).join(''), operands: chain.map((c) => c.k) },
    };
  },

  check(item, answer) {
    const got = parseIntegerAnswer(answer);
    return got !== null && got === Number(item.answer);
  },
};
