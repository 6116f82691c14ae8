// countdown: the final answer is an expression that reaches the target from the given numbers
// (each once, only + - * / and parentheses), checked by @temper/data's verifier, which
// parses and never evaluates code. Comparing with one reference expression would be wrong
// both ways: "4+9" is as good as "9+4", and "13" (the target, copied from the prompt) is no
// solution at all, though it equals the reference's value.
//
// The reference says what the problem is, in either of two forms:
//   "9,4=13"  the numbers and the target;
//   "9+4"     a known solution: its literals are the numbers and its value the target (what
//             the built-in countdown task hands out as its answer).
// A legal expression over the numbers that misses the target can earn partialCredit, scaled
// by how close it comes (|value - target| relative to the target); copying the target or
// breaking the rules earns nothing.
import { parseCountdownProblem, verifyCountdown } from '@temper/data';
import { extractAnswer } from '../answer/extract';
import { RewardSpecError } from '../errors';
import { ComponentOutcome, OptionValue, RewardComponent } from '../types';

interface CountdownSettings {
  partialCredit: number;
  mustUseAll: boolean;
  answerTag: string;
  reasoningTag: string;
}

export const countdown: RewardComponent<CountdownSettings> = {
  name: 'countdown',
  needsReference: true,
  description: 'Final answer is an expression reaching the target from the given numbers (reference "9,4=13" or a solution "9+4"): 1; a legal miss earns partial credit by closeness.',
  options: {
    partialCredit: { type: 'number', default: 0, min: 0, max: 1, description: 'Most a legal expression that misses the target can get, scaled by 1 - |value - target| / target.' },
    mustUseAll: { type: 'boolean', default: true, description: 'Every given number must be used (each exactly once); false: each at most once.' },
    answerTag: { type: 'string', default: 'answer', description: 'Tag of the answer block.' },
    reasoningTag: { type: 'string', default: 'think', description: 'Tag of the reasoning block, never searched for the answer.' },
  },
  prepare: (o, path) => countdownSettings(o, path),
  score: (input, s) => scoreCountdown(input.completion, input.reference, s),
};

function countdownSettings(o: Record<string, OptionValue>, path: string): CountdownSettings {
  for (const key of ['answerTag', 'reasoningTag'] as const) {
    if (!/^[A-Za-z][\w-]*$/.test(o[key] as string)) throw new RewardSpecError(`${path}.${key}`, 'must be a tag name like "answer"');
  }
  return { partialCredit: o.partialCredit as number, mustUseAll: o.mustUseAll as boolean, answerTag: o.answerTag as string, reasoningTag: o.reasoningTag as string };
}

function scoreCountdown(completion: string, reference: string, s: CountdownSettings): ComponentOutcome {
  const problem = parseCountdownProblem(reference);
  if (!problem) return { value: 0, flags: ['bad_reference'] };
  const found = extractAnswer(completion, { sources: ['answer'], answerTag: s.answerTag, reasoningTag: s.reasoningTag });
  if (!found) return { value: 0, flags: ['no_answer'] };
  if (found.multiple) return { value: 0, flags: ['multiple_answers'] };
  const verdict = verifyCountdown(found.answer, problem.numbers, problem.target, { mustUseAll: s.mustUseAll });
  if (verdict.ok) return { value: 1 };
  // A value exists only for an expression that kept the rules (numbers checked before computing).
  if (verdict.value === undefined || s.partialCredit === 0) return { value: 0, flags: ['wrong_answer'] };
  const [p, q = '1'] = verdict.value.split('/');
  const miss = Math.abs(Number(p) / Number(q) - problem.target) / Math.max(1, Math.abs(problem.target));
  return { value: s.partialCredit * Math.max(0, 1 - miss), flags: ['missed_target'] };
}
