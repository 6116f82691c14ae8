// Countdown-style target reaching: combine the given numbers with + - * / to hit a target.
// Problems are made by playing the game forwards (combine two numbers, put the result back,
// until one remains), so every problem has at least the generated solution. Any expression
// that verifyCountdown accepts is a correct answer, not only the reference one.
import type { Rng } from '../rng';
import { verifyCountdown } from './countdown-verifier';
import type { Problem, TaskGenerator } from './types';

type Op = '+' | '-' | '*' | '/';

interface Level {
  count: number;
  range: [number, number];
  ops: readonly Op[];
  maxTarget: number;
}

const levels: readonly Level[] = [
  { count: 2, range: [1, 12], ops: ['+', '-'], maxTarget: 24 },
  { count: 3, range: [1, 9], ops: ['+', '-', '*'], maxTarget: 99 },
  { count: 3, range: [1, 20], ops: ['+', '-', '*', '/'], maxTarget: 200 },
  { count: 4, range: [1, 25], ops: ['+', '-', '*', '/'], maxTarget: 500 },
  { count: 5, range: [1, 50], ops: ['+', '-', '*', '/'], maxTarget: 999 },
];

// An operand as the expression that produced it, with the precedence of its outermost
// operator so parentheses are written only where needed (3 for a bare number).
interface Term {
  value: number;
  text: string;
  prec: number;
}

function combine(op: Op, a: Term, b: Term): Term {
  const wrap = (t: Term, needs: boolean) => (needs ? `(${t.text})` : t.text);
  switch (op) {
    case '+':
      return { value: a.value + b.value, text: `${a.text}+${b.text}`, prec: 1 };
    case '-':
      return { value: a.value - b.value, text: `${a.text}-${wrap(b, b.prec <= 1)}`, prec: 1 };
    case '*':
      return { value: a.value * b.value, text: `${wrap(a, a.prec <= 1)}*${wrap(b, b.prec <= 1)}`, prec: 2 };
    case '/':
      return { value: a.value / b.value, text: `${wrap(a, a.prec <= 1)}/${wrap(b, b.prec <= 2)}`, prec: 2 };
  }
}

// The ops that keep the game in positive whole numbers for this ordered pair.
function legalOps(level: Level, a: number, b: number): Op[] {
  return level.ops.filter((op) => {
    if (op === '-') return a > b;
    if (op === '/') return b > 1 && a % b === 0;
    if (op === '*') return a > 1 && b > 1 && a * b <= level.maxTarget * 4;
    return true;
  });
}

function tryPlay(rng: Rng, level: Level): { numbers: number[]; target: number; steps: string[]; expression: string } | null {
  const numbers = Array.from({ length: level.count }, () => rng.int(...level.range));
  let pool: Term[] = numbers.map((n) => ({ value: n, text: String(n), prec: 3 }));
  const steps: string[] = [];
  while (pool.length > 1) {
    const order = rng.shuffle(pool.map((_, i) => i));
    let [i, j] = [order[0], order[1]];
    if (pool[i].value < pool[j].value) [i, j] = [j, i];
    const ops = legalOps(level, pool[i].value, pool[j].value);
    if (ops.length === 0) return null;
    const op = rng.pick(ops);
    const t = combine(op, pool[i], pool[j]);
    steps.push(`${pool[i].value}${op}${pool[j].value}=${t.value}`);
    pool = pool.filter((_, k) => k !== i && k !== j).concat(t);
  }
  const target = pool[0].value;
  // A target equal to a given number would let a lucky copy of the prompt score.
  if (target < 1 || target > level.maxTarget || numbers.includes(target)) return null;
  return { numbers, target, steps, expression: pool[0].text };
}

export const countdownTask: TaskGenerator = {
  name: 'countdown',
  maxDifficulty: levels.length,

  sample(rng: Rng, difficulty: number): Problem {
    const level = levels[difficulty - 1];
    if (!level) throw new RangeError(`countdown difficulty must be 1..${levels.length}, got ${difficulty}`);
    for (let attempt = 0; attempt < 1000; attempt++) {
      const game = tryPlay(rng, level);
      if (!game) continue;
      const { numbers, target, steps, expression } = game;
      return {
        prompt: `Using ${numbers.join(', ')} once each, make ${target}.`,
        answer: expression,
        steps,
        longSteps: [
          `The numbers are ${numbers.join(', ')} and the target is ${target}.`,
          ...steps.map((s, k) => (k === 0 ? `First, ${s}.` : `Then ${s}.`)),
          `That reaches ${target} with each number used once, so the expression is ${expression}.`,
        ],
        canonical: `countdown:${[...numbers].sort((a, b) => a - b).join(',')}=${target}`,
        meta: { numbers, target },
      };
    }
    throw new Error(`countdown: could not pose a problem at difficulty ${difficulty}`);
  },

  check(item, answer) {
    const numbers = item.meta.numbers;
    const target = item.meta.target;
    if (!Array.isArray(numbers) || typeof target !== 'number') return false;
    return verifyCountdown(answer, numbers, target).ok;
  },
};
