// Synthetic "web math" text: short expository pages of the kind found in math-heavy web
// corpora (worked examples, facts with a reason, tables, definitions with a checked
// example, forum-style questions). Every number statement is computed, never templated, so
// the corpus is free of arithmetic errors, and it uses the same a+b=c notation as the
// tasks' reasoning so that mid-training on it transfers to them.
import { createRng, type Rng } from '../rng';
import { splitOf } from '../split';
import { arithmeticCanonical } from '../tasks/arithmetic';
import { modularRemainderCanonical } from '../tasks/modular';
import { sortingCanonical } from '../tasks/sorting';
import type { Document } from './types';

type Paragraph = (rng: Rng) => string;

// Held out are problems, not facts: "5+2=7" is general knowledge and appears here and inside
// other problems' reasoning, but a paragraph that poses one of the tasks' problems together
// with its answer (a reader's word problem, "a mod m", a sorted list) is drawn again until
// that problem is in the training split.
function trainOnly(make: (rng: Rng) => { text: string; canonical: string }): Paragraph {
  return (rng) => {
    for (;;) {
      const p = make(rng);
      if (splitOf(p.canonical) === 'train') return p.text;
    }
  };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function smallestFactor(n: number): number {
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return d;
  return n;
}

const paragraphs: readonly Paragraph[] = [
  // Column addition with carries, written out.
  (rng) => {
    const a = rng.int(10, 99);
    const b = rng.int(10, 99);
    const ones = (a % 10) + (b % 10);
    const carry = ones >= 10 ? 1 : 0;
    const tens = Math.floor(a / 10) + Math.floor(b / 10) + carry;
    const carryText = carry ? `, write ${ones % 10} and carry 1` : '';
    return `Example: find ${a}+${b}. Add the ones: ${a % 10}+${b % 10}=${ones}${carryText}. Add the tens: ${Math.floor(a / 10)}+${Math.floor(b / 10)}${carry ? '+1' : ''}=${tens}. So ${a}+${b}=${a + b}.`;
  },
  // Subtraction checked by addition.
  (rng) => {
    const a = rng.int(20, 199);
    const b = rng.int(1, a);
    return `To compute ${a}-${b}, count up from ${b} to ${a}. The difference is ${a - b}. Check: ${b}+${a - b}=${a}.`;
  },
  // Multiplication as repeated addition.
  (rng) => {
    const a = rng.int(2, 9);
    const b = rng.int(2, 6);
    return `Multiplication is repeated addition. ${a}*${b} means adding ${a} ${b} times: ${Array(b).fill(a).join('+')}=${a * b}.`;
  },
  // A row of a times table.
  (rng) => {
    const n = rng.int(2, 12);
    const upTo = rng.int(5, 10);
    const rows = Array.from({ length: upTo }, (_, i) => `${n}*${i + 1}=${n * (i + 1)}`);
    return `The ${n} times table: ${rows.join(', ')}.`;
  },
  // Addition and subtraction facts: the single-step sums and differences the easiest tasks
  // rest on, so a tiny model can learn them as facts in mid-training.
  (rng) => {
    const n = rng.int(0, 12);
    const rows = Array.from({ length: 13 }, (_, k) => `${n}+${k}=${n + k}`);
    return `Adding to ${n}: ${rows.join(', ')}.`;
  },
  (rng) => {
    const n = rng.int(1, 24);
    const rows = Array.from({ length: Math.min(n, 12) + 1 }, (_, k) => `${n}-${k}=${n - k}`);
    return `Taking away from ${n}: ${rows.join(', ')}.`;
  },
  // Division with remainder.
  trainOnly((rng) => {
    const m = rng.int(2, 12);
    const a = rng.int(m, 150);
    const q = Math.floor(a / m);
    const r = a % m;
    return {
      text: `When ${a} is divided by ${m}, the quotient is ${q} and the remainder is ${r}, because ${a}=${q}*${m}+${r}. We write ${a} mod ${m}=${r}.`,
      canonical: modularRemainderCanonical(a, m),
    };
  }),
  // Parity.
  trainOnly((rng) => {
    const n = rng.int(1, 200);
    const even = n % 2 === 0;
    return {
      text: `A number is even when it leaves remainder 0 after division by 2. ${n}=${Math.floor(n / 2)}*2+${n % 2}, so ${n} is ${even ? 'even' : 'odd'}.`,
      canonical: modularRemainderCanonical(n, 2),
    };
  }),
  // Primes, with the reason.
  (rng) => {
    const n = rng.int(2, 99);
    if (isPrime(n)) return `${n} is a prime number: no number from 2 to ${n - 1} divides it evenly.`;
    const f = smallestFactor(n);
    return `${n} is not prime, since ${n}=${f}*${n / f}.`;
  },
  // Ordering a few numbers.
  trainOnly((rng) => {
    const xs = Array.from({ length: rng.int(3, 5) }, () => rng.int(0, 99));
    const sorted = [...xs].sort((a, b) => a - b);
    return {
      text: `Among ${xs.join(', ')}, the smallest is ${sorted[0]} and the largest is ${sorted[sorted.length - 1]}. In increasing order: ${sorted.join(' ')}.`,
      canonical: sortingCanonical(xs, false),
    };
  }),
  // Order of operations.
  (rng) => {
    const a = rng.int(1, 20);
    const b = rng.int(2, 9);
    const c = rng.int(2, 9);
    return `Multiplication comes before addition: ${a}+${b}*${c}=${a}+${b * c}=${a + b * c}, while (${a}+${b})*${c}=${a + b}*${c}=${(a + b) * c}.`;
  },
  // Forum-style question with an answer.
  trainOnly((rng) => {
    const has = rng.int(5, 40);
    const gone = rng.int(1, has);
    const thing = rng.pick(['apples', 'marbles', 'stickers', 'pencils', 'cookies']);
    return {
      text: `Question from a reader: I had ${has} ${thing} and gave away ${gone}. How many are left? Answer: ${has}-${gone}=${has - gone}, so ${has - gone} ${thing} are left.`,
      canonical: arithmeticCanonical(has, [{ op: '-', k: gone }]),
    };
  }),
  // Powers and remainders.
  (rng) => {
    const a = rng.int(2, 9);
    const k = rng.int(2, 4);
    const values = [a];
    for (let i = 1; i < k; i++) values.push(values[i - 1] * a);
    return `Powers grow fast: ${values.map((v, i) => `${a}^${i + 1}=${v}`).join(', ')}.`;
  },
];

const titles = ['Notes on arithmetic', 'Math practice', 'Worked examples', 'Number facts', 'Homework help', 'Study guide'];

/** An endless seeded stream of web-math pages of two to six paragraphs. */
export function* webMathDocuments(seed: number | string): Generator<Document> {
  const rng = createRng('web-math', seed);
  for (;;) {
    const count = rng.int(2, 6);
    const body = Array.from({ length: count }, () => rng.pick(paragraphs)(rng));
    yield { text: `${rng.pick(titles)}\n\n${body.join('\n\n')}`, source: 'web-math' };
  }
}
