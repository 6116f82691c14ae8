// reasoning: the quality of the reasoning block, for tasks whose reasoning is arithmetic
// (the built-in multiple-choice task, word problems). Three parts, each from 0 to 1, averaged:
//   steps       distinct worked steps "a op b = c" whose arithmetic holds, up to minSteps
//               (a written but wrong step is no step: it would otherwise be free to invent);
//   length      1 inside [minChars, maxChars]; below, the share of minChars reached; above,
//               falling linearly to 0 at twice maxChars (long is not better);
//   repetition  1 while at most maxRepeatedShare of the word n-grams repeat an earlier one
//               (prose repeats a phrase now and then), falling linearly to 0 when all do.
// Reasoning is what textInScope calls it: inside <think>…</think>, else before the answer.
import { RewardSpecError } from '../errors';
import { distinctShare, textInScope } from '../text';
import { OptionValue, RewardComponent } from '../types';

interface ReasoningSettings {
  minSteps: number;
  minChars: number;
  maxChars: number;
  n: number;
  maxRepeatedShare: number;
}

export const reasoning: RewardComponent<ReasoningSettings> = {
  name: 'reasoning',
  description: 'Reasoning quality from 0 to 1: the mean of correct worked steps (up to minSteps), length within [minChars, maxChars], and few repeated word n-grams.',
  options: {
    minSteps: { type: 'number', default: 2, min: 1, max: 100, description: 'Correct distinct steps "a op b = c" for full credit on steps.' },
    minChars: { type: 'number', default: 20, min: 0, description: 'Shortest reasoning (characters) with full credit on length.' },
    maxChars: { type: 'number', default: 400, min: 1, description: 'Longest reasoning with full credit on length; 0 credit at twice this.' },
    n: { type: 'number', default: 3, min: 1, max: 16, description: 'n-gram size in words for the repetition part.' },
    maxRepeatedShare: { type: 'number', default: 0.1, min: 0, max: 0.99, description: 'Share of repeated word n-grams still given full credit.' },
  },
  prepare: (o, path) => reasoningSettings(o, path),
  score: (input, s) => {
    const text = textInScope(input.completion, 'reasoning');
    const parts = reasoningParts(text, s);
    const value = (parts.steps + parts.length + parts.repetition) / 3;
    const flags = [...(parts.steps === 0 ? ['no_steps'] : []), ...(parts.length < 1 ? ['reasoning_length'] : []), ...(parts.repetition < 0.5 ? ['repetitive'] : [])];
    return { value, flags };
  },
};

function reasoningSettings(o: Record<string, OptionValue>, path: string): ReasoningSettings {
  if ((o.minChars as number) > (o.maxChars as number)) throw new RewardSpecError(`${path}.minChars`, `must not exceed maxChars (${o.maxChars as number})`);
  return { minSteps: Math.round(o.minSteps as number), minChars: o.minChars as number, maxChars: o.maxChars as number, n: Math.round(o.n as number), maxRepeatedShare: o.maxRepeatedShare as number };
}

export interface ReasoningParts {
  steps: number;
  length: number;
  repetition: number;
}

export function reasoningParts(text: string, s: ReasoningSettings): ReasoningParts {
  const chars = text.trim().length;
  const length = chars < s.minChars ? chars / s.minChars : chars <= s.maxChars ? 1 : Math.max(0, 2 - chars / s.maxChars);
  return { steps: Math.min(1, correctSteps(text).size / s.minSteps), length, repetition: chars === 0 ? 0 : Math.min(1, distinctShare(text, s.n) / (1 - s.maxRepeatedShare)) };
}

const equation = /(\d{1,12})\s*([-+*×x/])\s*(\d{1,12})\s*=\s*(-?\d{1,15})/g;

/** The distinct steps "a op b = c" in `text` whose arithmetic is right. */
export function correctSteps(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(equation)) {
    const [a, b, c] = [Number(m[1]), Number(m[3]), Number(m[4])];
    const op = m[2];
    const value = op === '+' ? a + b : op === '-' ? a - b : op === '/' ? a / b : a * b;
    if (value === c) out.add(`${a}${op === 'x' || op === '×' ? '*' : op}${b}=${c}`);
  }
  return out;
}
