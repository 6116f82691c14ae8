// accuracy: 1 when the completion's final answer (and only that: never the reasoning)
// is equivalent to the reference, else 0. No answer, several different answers, or a
// hedged one score 0 and say why in the flags.
import { EquivalenceOptions, isEquivalent } from '../answer/equivalence';
import { AnswerSource, extractAnswer, ExtractOptions } from '../answer/extract';
import { hedgeReason } from '../answer/hedging';
import { RewardSpecError } from '../errors';
import { reasoningInPrompt } from '../text';
import { AccuracyVerdict, OptionValue, RewardComponent, ScoreInput } from '../types';

export interface AccuracySettings {
  extract: ExtractOptions;
  equivalence: EquivalenceOptions;
  maxAnswerChars: number;
}

export const accuracy: RewardComponent<AccuracySettings> = {
  name: 'accuracy',
  needsReference: true,
  description: 'Final answer (last <answer> block, \\boxed{} or pattern match) equivalent to the reference: 1, else 0.',
  options: {
    sources: { type: 'list', default: ['answer', 'boxed'], oneOf: ['answer', 'boxed', 'pattern'], description: 'Where the final answer may come from; the last one in the text wins.' },
    pattern: { type: 'string', default: '', description: 'Regular expression for answers (first capture group, else the whole match); setting it adds "pattern" to sources.' },
    answerTag: { type: 'string', default: 'answer', description: 'Tag of the answer block.' },
    reasoningTag: { type: 'string', default: 'think', description: 'Tag of the reasoning block, never searched for answers; "" to search everywhere.' },
    relTolerance: { type: 'number', default: 1e-6, min: 0, max: 1, description: 'Relative tolerance for non-integer numbers.' },
    absTolerance: { type: 'number', default: 1e-9, min: 0, description: 'Absolute tolerance for non-integer numbers.' },
    percentAsFraction: { type: 'boolean', default: true, description: 'A percentage also matches its fraction (25% = 0.25).' },
    samplePoints: { type: 'number', default: 5, min: 1, max: 50, description: 'Random points at which expressions with variables must agree.' },
    choices: { type: 'string', default: 'ABCDE', description: 'Multiple-choice letters: a reference that is one of them is compared as a choice.' },
    maxAnswerChars: { type: 'number', default: 1000, min: 1, description: 'Longer extracted answers are not compared (flag answer_too_long).' },
  },
  prepare: (o, path) => accuracySettings(o, path),
  score: (_input, _settings, ctx) => {
    const v = ctx.verdict();
    return { value: v.correct ? 1 : 0, flags: v.flags };
  },
};

export function accuracySettings(o: Record<string, OptionValue>, path: string): AccuracySettings {
  const sources = [...(o.sources as AnswerSource[])];
  let pattern: RegExp | undefined;
  if (o.pattern) {
    try {
      pattern = new RegExp(o.pattern as string, 'g');
    } catch (err) {
      throw new RewardSpecError(`${path}.pattern`, `not a valid regular expression: ${(err as Error).message}`);
    }
    if (!sources.includes('pattern')) sources.push('pattern');
  } else if (sources.includes('pattern')) {
    throw new RewardSpecError(`${path}.pattern`, 'sources lists "pattern" but no pattern is set');
  }
  if (!/^[A-Za-z][\w-]*$/.test(o.answerTag as string)) throw new RewardSpecError(`${path}.answerTag`, 'must be a tag name like "answer"');
  if (o.reasoningTag !== '' && !/^[A-Za-z][\w-]*$/.test(o.reasoningTag as string)) throw new RewardSpecError(`${path}.reasoningTag`, 'must be a tag name like "think", or ""');
  return {
    extract: { sources, pattern, answerTag: o.answerTag as string, reasoningTag: o.reasoningTag as string },
    equivalence: {
      relTolerance: o.relTolerance as number,
      absTolerance: o.absTolerance as number,
      percentAsFraction: o.percentAsFraction as boolean,
      samplePoints: Math.round(o.samplePoints as number),
      choices: o.choices as string,
    },
    maxAnswerChars: o.maxAnswerChars as number,
  };
}

/** Extracts the final answer of one completion and judges it against the reference. */
export function judgeAnswer(input: ScoreInput, s: AccuracySettings): AccuracyVerdict {
  // Two answers that mean the same ("5" and "5.0") are one answer written twice.
  const same = (a: string, b: string) => a.length <= s.maxAnswerChars && b.length <= s.maxAnswerChars && isEquivalent(a, b, s.equivalence);
  const reasoningOpen = reasoningInPrompt(input.prompt, s.extract.reasoningTag ?? 'think') === 'opened';
  const found = extractAnswer(input.completion, { ...s.extract, same, reasoningOpen });
  if (!found) return { correct: false, answer: '', flags: ['no_answer'] };
  const answer = found.answer;
  if (found.multiple) return { correct: false, answer, flags: ['multiple_answers'] };
  if (answer.length > s.maxAnswerChars) return { correct: false, answer: answer.slice(0, s.maxAnswerChars), flags: ['answer_too_long'] };
  if (hedgeReason(answer, input.reference)) return { correct: false, answer, flags: ['hedged'] };
  return { correct: isEquivalent(answer, input.reference, s.equivalence), answer, flags: [] };
}
