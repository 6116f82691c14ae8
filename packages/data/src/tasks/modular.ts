// Modular arithmetic: remainders of sums, products and powers. Answers are small whole
// numbers (below the modulus), which suits a tiny model; the reasoning is a short chain of
// multiply-and-reduce steps that longer problems repeat.
import type { Rng } from '../rng';
import { parseIntegerAnswer } from './answers';
import type { Problem, TaskGenerator } from './types';

const mod = (a: number, m: number) => ((a % m) + m) % m;

function remainderStep(v: number, m: number): string {
  return `${v}=${Math.floor(v / m)}*${m}+${mod(v, m)}`;
}

type Poser = (rng: Rng) => Problem;

/** The canonical form of "a mod m", the first level's problem. */
export function modularRemainderCanonical(a: number, m: number): string {
  return `modular:${a}%${m}`;
}

function problem(expression: string, canonical: string, steps: string[], longSteps: string[], answer: number, meta: Problem['meta']): Problem {
  return { prompt: `What is ${expression}?`, answer: String(answer), steps, longSteps, canonical, meta };
}

const levels: readonly Poser[] = [
  (rng) => {
    const m = rng.int(2, 9);
    const a = rng.int(0, 20);
    const r = mod(a, m);
    return problem(`${a} mod ${m}`, modularRemainderCanonical(a, m), [remainderStep(a, m)], [`Divide ${a} by ${m}: ${remainderStep(a, m)}.`, `The remainder is ${r}.`], r, { modulus: m });
  },
  (rng) => {
    const m = rng.int(2, 12);
    const a = rng.int(0, 30);
    const b = rng.int(0, 30);
    const s = a + b;
    const r = mod(s, m);
    // a+b and b+a are the same problem.
    const [x, y] = a <= b ? [a, b] : [b, a];
    return problem(`(${a}+${b}) mod ${m}`, `modular:(${x}+${y})%${m}`, [`${a}+${b}=${s}`, remainderStep(s, m)], [`First add: ${a}+${b}=${s}.`, `Then divide by ${m}: ${remainderStep(s, m)}.`, `The remainder is ${r}.`], r, { modulus: m });
  },
  (rng) => {
    const m = rng.int(2, 13);
    const a = rng.int(2, 20);
    const b = rng.int(2, 20);
    const p = a * b;
    const r = mod(p, m);
    const [x, y] = a <= b ? [a, b] : [b, a];
    return problem(`(${a}*${b}) mod ${m}`, `modular:(${x}*${y})%${m}`, [`${a}*${b}=${p}`, remainderStep(p, m)], [`First multiply: ${a}*${b}=${p}.`, `Then divide by ${m}: ${remainderStep(p, m)}.`, `The remainder is ${r}.`], r, { modulus: m });
  },
  (rng) => {
    const m = rng.int(3, 13);
    const a = rng.int(2, 12);
    const k = rng.int(2, 4);
    // Reduce after every multiplication, the way one computes powers by hand.
    const steps: string[] = [];
    let v = mod(a, m);
    if (a !== v) steps.push(`${a} mod ${m}=${v}`);
    for (let i = 1; i < k; i++) {
      const p = v * mod(a, m);
      const r = mod(p, m);
      steps.push(`${v}*${mod(a, m)}=${p}`, `${p} mod ${m}=${r}`);
      v = r;
    }
    return problem(`${a}^${k} mod ${m}`, `modular:${a}^${k}%${m}`, steps, [`Multiply by ${a} one step at a time and keep only the remainder mod ${m}.`, ...steps.map((s) => `${s}.`), `So ${a}^${k} mod ${m} is ${v}.`], v, { modulus: m });
  },
  (rng) => {
    const m = rng.int(7, 30);
    const a = rng.int(10, 99);
    const b = rng.int(10, 99);
    const c = rng.int(1, 99);
    const p = a * b;
    const s = p + c;
    const r = mod(s, m);
    const [x, y] = a <= b ? [a, b] : [b, a];
    return problem(
      `(${a}*${b}+${c}) mod ${m}`,
      `modular:(${x}*${y}+${c})%${m}`,
      [`${a}*${b}=${p}`, `${p}+${c}=${s}`, remainderStep(s, m)],
      [`Multiply first: ${a}*${b}=${p}.`, `Add ${c}: ${p}+${c}=${s}.`, `Divide by ${m}: ${remainderStep(s, m)}.`, `The remainder is ${r}.`],
      r,
      { modulus: m },
    );
  },
];

export const modularTask: TaskGenerator = {
  name: 'modular',
  maxDifficulty: levels.length,
  sample(rng, difficulty) {
    const pose = levels[difficulty - 1];
    if (!pose) throw new RangeError(`modular difficulty must be 1..${levels.length}, got ${difficulty}`);
    return pose(rng);
  },
  check(item, answer) {
    const got = parseIntegerAnswer(answer);
    return got !== null && got === Number(item.answer);
  },
};
