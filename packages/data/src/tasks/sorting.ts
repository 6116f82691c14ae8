// Sorting a short list of integers, ascending or descending. The answer is the list with
// single spaces; commas are accepted too. Difficulty grows with the list length, the size
// of the numbers, descending order and negatives.
import type { Rng } from '../rng';
import { parseIntegerList } from './answers';
import type { Problem, TaskGenerator } from './types';

interface Level {
  count: number;
  range: [number, number];
  descending: boolean;
}

const levels: readonly Level[] = [
  { count: 3, range: [0, 9], descending: false },
  { count: 4, range: [0, 20], descending: false },
  { count: 5, range: [0, 99], descending: true },
  { count: 6, range: [0, 999], descending: true },
  { count: 8, range: [-99, 999], descending: true },
];

/** The canonical form: direction and the multiset of numbers (input order does not change the answer). */
export function sortingCanonical(numbers: readonly number[], descending: boolean): string {
  return `sorting:${descending ? 'desc' : 'asc'}:${[...numbers].sort((a, b) => a - b).join(',')}`;
}

export const sortingTask: TaskGenerator = {
  name: 'sorting',
  maxDifficulty: levels.length,

  sample(rng: Rng, difficulty: number): Problem {
    const level = levels[difficulty - 1];
    if (!level) throw new RangeError(`sorting difficulty must be 1..${levels.length}, got ${difficulty}`);
    const numbers = Array.from({ length: level.count }, () => rng.int(...level.range));
    const descending = level.descending && rng.chance(0.5);
    const sorted = [...numbers].sort((a, b) => (descending ? b - a : a - b));
    const answer = sorted.join(' ');
    const relation = descending ? '>=' : '<=';
    const word = descending ? 'largest' : 'smallest';
    return {
      prompt: `Sort ${descending ? 'descending' : 'ascending'}: ${numbers.join(' ')}`,
      answer,
      steps: [sorted.join(relation)],
      longSteps: [
        `Take the ${word} remaining number each time.`,
        ...sorted.map((n, i) => `${i === 0 ? `The ${word} is` : 'Next is'} ${n}.`),
        `Check: ${sorted.join(relation)}, and all ${numbers.length} numbers are used.`,
      ],
      canonical: sortingCanonical(numbers, descending),
      meta: { numbers, descending: descending ? 1 : 0 },
    };
  },

  check(item, answer) {
    const got = parseIntegerList(answer);
    const want = parseIntegerList(item.answer);
    return got !== null && want !== null && got.length === want.length && got.every((v, i) => v === want[i]);
  },
};
