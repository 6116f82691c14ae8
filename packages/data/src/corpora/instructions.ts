// Instruction-style pairs: small, checkable requests about words and numbers, answered in
// the <think>/<answer> format (or plainly). The seeds found instruction data unlocks the
// benefit of QA data in mid-training; here it also teaches the answer format on inputs that
// are not the evaluation tasks.
import { createRng, type Rng } from '../rng';
import { formatCompletion } from '../tasks/format';
import { renderQa, type Document, type PairRenderer, type PromptResponse } from './types';

const words = ['cat', 'dog', 'sun', 'tree', 'book', 'lamp', 'river', 'stone', 'apple', 'cloud', 'green', 'house', 'piano', 'zebra', 'moon', 'fish', 'bird', 'road'];

const ones = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const tens = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English words for 0..999 ("forty-seven", "three hundred and five"). */
export function numberToWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 999) throw new RangeError(`numberToWords covers 0..999, got ${n}`);
  if (n < 20) return ones[n];
  if (n < 100) return tens[Math.floor(n / 10)] + (n % 10 ? `-${ones[n % 10]}` : '');
  const rest = n % 100;
  return `${ones[Math.floor(n / 100)]} hundred${rest ? ` and ${numberToWords(rest)}` : ''}`;
}

interface Instruction {
  prompt: string;
  reasoning: string;
  answer: string;
}

const makers: readonly ((rng: Rng) => Instruction)[] = [
  (rng) => {
    const w = rng.pick(words);
    const r = [...w].reverse().join('');
    return { prompt: `Reverse the word ${w}.`, reasoning: `${[...w].join('-')} backwards is ${[...r].join('-')}`, answer: r };
  },
  (rng) => {
    const w = rng.pick(words);
    return { prompt: `How many letters are in ${w}?`, reasoning: `${[...w].map((c, i) => `${c}${i + 1}`).join(' ')}`, answer: String(w.length) };
  },
  (rng) => {
    const n = rng.int(0, 999);
    return { prompt: `Write ${n} in words.`, reasoning: `${n} is ${numberToWords(n)}`, answer: numberToWords(n) };
  },
  (rng) => {
    const a = rng.int(0, 99);
    let b = rng.int(0, 99);
    if (b === a) b = (a + 1) % 100;
    return { prompt: `Which is larger, ${a} or ${b}?`, reasoning: a > b ? `${a}>${b}` : `${b}>${a}`, answer: String(Math.max(a, b)) };
  },
  (rng) => {
    const n = rng.int(0, 998);
    return { prompt: `What number comes after ${n}?`, reasoning: `${n}+1=${n + 1}`, answer: String(n + 1) };
  },
  (rng) => {
    const w = rng.pick(words);
    return { prompt: `Write ${w} in capitals.`, reasoning: `${[...w].join(' ')} -> ${[...w.toUpperCase()].join(' ')}`, answer: w.toUpperCase() };
  },
  (rng) => {
    const n = rng.int(10, 999);
    const digits = String(n).split('').map(Number);
    const sum = digits.reduce((s, d) => s + d, 0);
    return { prompt: `Add the digits of ${n}.`, reasoning: `${digits.join('+')}=${sum}`, answer: String(sum) };
  },
  (rng) => {
    const n = rng.int(0, 200);
    return { prompt: `Is ${n} even or odd?`, reasoning: `${n}=${Math.floor(n / 2)}*2+${n % 2}`, answer: n % 2 === 0 ? 'even' : 'odd' };
  },
  (rng) => {
    const w = rng.pick(words);
    return { prompt: `What is the first letter of ${w}?`, reasoning: `${w} starts with ${w[0]}`, answer: w[0] };
  },
];

export interface InstructionOptions {
  seed: number | string;
  /** 'tagged' answers in <think>…</think><answer>…</answer>; 'plain' gives the answer alone. */
  format?: 'tagged' | 'plain';
  render?: PairRenderer;
}

/** Endless seeded instruction/response pairs. */
export function* instructionPairs(options: InstructionOptions): Generator<PromptResponse> {
  const rng = createRng('instructions', options.seed);
  const tagged = (options.format ?? 'tagged') === 'tagged';
  for (;;) {
    const x = rng.pick(makers)(rng);
    yield { prompt: x.prompt, response: tagged ? formatCompletion(x.reasoning, x.answer) : x.answer, source: 'instructions' };
  }
}

/** Endless instruction documents: each pair rendered as one text. */
export function* instructionDocuments(options: InstructionOptions): Generator<Document> {
  const render = options.render ?? renderQa;
  for (const p of instructionPairs(options)) yield { text: render(p.prompt, p.response), source: p.source };
}
