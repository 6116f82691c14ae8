// choice_guard: a penalty for the ways a multiple-choice reward gets gamed. 0 for an honest
// completion; `penalty` (negative) when any guard fires, each named in the flags:
//   several_options      the answer names more than one option ("A or B", "A, C"), hedges, or
//                        gives its letter a value the question lists under another ("D)6"
//                        where D is 5);
//   answer_in_reasoning  the answer block is missing while the reasoning names an option, or
//                        the block holds more than the option (reasoning written into it);
//   copied_question      the completion repeats most of the question's word n-grams, or lists
//                        three or more of its options ("A)6 B)4 …");
//   padding              reasoning longer than maxChars, a run of one character (dots, spaces,
//                        newlines) of maxRun or more, or mostly repeated word n-grams.
// Give it a weight at least that of accuracy (plus what format and reasoning can add), and a
// hacked right answer scores no more than an honest wrong one.
import { choicesIn } from '../answer/choice';
import { RewardSpecError } from '../errors';
import { distinctShare, textInScope, wordNgrams } from '../text';
import { OptionValue, RewardComponent } from '../types';

interface GuardSettings {
  choices: string;
  penalty: number;
  maxCopiedShare: number;
  n: number;
  maxChars: number;
  maxRun: number;
  minDistinctShare: number;
}

export const choiceGuard: RewardComponent<GuardSettings> = {
  name: 'choice_guard',
  description: 'Multiple-choice hack guards: penalty when the answer names several options, hides in the reasoning, the question is copied, or the reasoning is padded; else 0.',
  options: {
    choices: { type: 'string', default: 'ABCDE', description: 'The option letters.' },
    penalty: { type: 'number', default: -1, max: 0, description: 'Value when a guard fires.' },
    maxCopiedShare: { type: 'number', default: 0.5, min: 0, max: 1, description: 'Largest share of the question\'s word n-grams the completion may repeat.' },
    n: { type: 'number', default: 3, min: 1, max: 16, description: 'n-gram size in words (copying and repetition).' },
    maxChars: { type: 'number', default: 800, min: 1, description: 'Reasoning longer than this (characters) is padding.' },
    maxRun: { type: 'number', default: 12, min: 2, description: 'A run of one character this long is padding.' },
    minDistinctShare: { type: 'number', default: 0.5, min: 0, max: 1, description: 'Reasoning with a smaller share of distinct word n-grams is padding.' },
  },
  prepare: (o: Record<string, OptionValue>, path: string) => {
    // The letters go into character classes below: capitals only.
    if (!/^[A-Z]{2,26}$/.test(o.choices as string)) throw new RewardSpecError(`${path}.choices`, `expected capital letters like "ABCDE", got "${o.choices as string}"`);
    return guardSettings(o);
  },
  score: (input, s, ctx) => {
    const verdict = ctx.verdict();
    const reasoningText = textInScope(input.completion, 'reasoning');
    const flags = [
      ...(severalOptions(verdict.answer, verdict.flags, s) || valueOfAnother(verdict.answer, input.prompt, s) ? ['several_options'] : []),
      ...(answerInReasoning(verdict.answer, reasoningText, s) ? ['answer_in_reasoning'] : []),
      ...(input.prompt && copiedQuestion(input.completion, input.prompt, s) ? ['copied_question'] : []),
      ...(padded(reasoningText, s) ? ['padding'] : []),
    ];
    return flags.length > 0 ? { value: s.penalty, flags } : 0;
  },
};

function guardSettings(o: Record<string, OptionValue>): GuardSettings {
  return {
    choices: o.choices as string,
    penalty: o.penalty as number,
    maxCopiedShare: o.maxCopiedShare as number,
    n: Math.round(o.n as number),
    maxChars: o.maxChars as number,
    maxRun: Math.round(o.maxRun as number),
    minDistinctShare: o.minDistinctShare as number,
  };
}

// \text{B}, \boxed{B} and \textbf{(B)} are the option written in LaTeX, not prose.
const unwrap = (answer: string) => answer.replace(/\\(?:text|textbf|mathrm|mathbf|boxed)\s*\{([^{}]*)\}/g, '$1');

function severalOptions(answer: string, accuracyFlags: string[], s: GuardSettings): boolean {
  if (accuracyFlags.includes('multiple_answers') || accuracyFlags.includes('hedged')) return true;
  // "ABCDE" and "A/B" name several though no letter stands alone in the first.
  const letters = choicesIn(unwrap(answer), s.choices);
  return letters.length > 1 || new RegExp(`[${s.choices}]{2,}|[${s.choices}]\\s*/\\s*[${s.choices}]`).test(unwrap(answer).replace(/[a-z]+/g, ''));
}

// "D)6": a letter with a value, where the prompt lists D as something else.
function valueOfAnother(answer: string, prompt: string | undefined, s: GuardSettings): boolean {
  const m = new RegExp(`^\\(?\\s*([${s.choices}])\\s*\\)?[.:]?\\s*([+-]?\\d+)$`).exec(unwrap(answer).trim());
  if (!m || !prompt) return false;
  const listed = new RegExp(`(?<![A-Za-z])${m[1]}\\)\\s*([+-]?\\d+)`).exec(prompt);
  return listed !== null && Number(listed[1]) !== Number(m[2]);
}

function answerInReasoning(answer: string, reasoningText: string, s: GuardSettings): boolean {
  if (answer === '') return choicesIn(reasoningText, s.choices).length > 0;
  const bare = new RegExp(`^\\(?\\s*[${s.choices}]\\s*\\)?[.:]?(?:\\s*[+-]?\\d+)?$`);
  const text = unwrap(answer).trim();
  return choicesIn(text, s.choices).length > 0 && !bare.test(text);
}

function copiedQuestion(completion: string, prompt: string, s: GuardSettings): boolean {
  const option = new RegExp(`(?<![A-Za-z])[${s.choices}]\\)\\s*[^\\s]+`, 'g');
  const listed = (text: string) => new Set([...text.matchAll(option)].map((m) => m[0].replace(/\s+/g, '')));
  const written = listed(completion);
  let optionsCopied = 0;
  for (const o of listed(prompt)) if (written.has(o)) optionsCopied++;
  if (optionsCopied >= 3) return true;
  const asked = new Set(wordNgrams(prompt, s.n));
  if (asked.size < 3) return false;
  const repeated = new Set(wordNgrams(completion, s.n));
  let copied = 0;
  for (const g of asked) if (repeated.has(g)) copied++;
  return copied / asked.size > s.maxCopiedShare;
}

function padded(reasoningText: string, s: GuardSettings): boolean {
  if (reasoningText.length > s.maxChars) return true;
  if (new RegExp(`([\\s\\S])\\1{${s.maxRun - 1},}`).test(reasoningText)) return true;
  return distinctShare(reasoningText, s.n) < s.minDistinctShare;
}
