// repetition: a penalty for repeating n-grams of words, the degenerate loop ("so the
// answer is so the answer is ...") that long generations fall into. Value
// maxPenalty × (1 − distinct n-grams / n-grams): 0 for text with no repeated n-gram,
// approaching maxPenalty as it becomes one phrase over and over.
import { distinctShare, scopes, Scope, textInScope } from '../text';
import { RewardComponent } from '../types';

interface RepetitionSettings {
  n: number;
  maxPenalty: number;
  scope: Scope;
}

export const repetition: RewardComponent<RepetitionSettings> = {
  name: 'repetition',
  description: 'Penalty for repeated word n-grams: maxPenalty × (1 − distinct/total).',
  options: {
    n: { type: 'number', default: 3, min: 1, max: 16, description: 'n-gram size in words.' },
    maxPenalty: { type: 'number', default: -1, max: 0, description: 'Value of text that is a single n-gram repeated (negative).' },
    scope: { type: 'string', default: 'completion', oneOf: scopes, description: 'Which part of the completion to look at.' },
  },
  prepare: (o) => ({ n: Math.round(o.n as number), maxPenalty: o.maxPenalty as number, scope: o.scope as Scope }),
  score: (input, s) => {
    const value = s.maxPenalty * (1 - distinctShare(textInScope(input.completion, s.scope), s.n));
    return value < 0 ? { value, flags: value <= s.maxPenalty / 2 ? ['repetitive'] : [] } : 0;
  },
};
