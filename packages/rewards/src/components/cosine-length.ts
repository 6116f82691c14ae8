// length: cosine-scaled length shaping (after "Demystifying Long Chain-of-Thought
// Reasoning in LLMs", 2025, and the medical-reasoning GRPO recipes that use it). Correct
// answers earn from maxCorrect (at length 0) down to minCorrect (at maxLength), so a
// shorter correct answer is preferred; wrong answers are penalised from minWrong (at 0)
// up to maxWrong (at maxLength), so a wrong answer is better after longer thought than
// after a quick guess. Along a half cosine, flat at both ends.
import { RewardSpecError } from '../errors';
import { OptionValue, RewardComponent } from '../types';

interface CosineSettings {
  minCorrect: number;
  maxCorrect: number;
  minWrong: number;
  maxWrong: number;
  maxLength: number;
}

export const cosineLength: RewardComponent<CosineSettings> = {
  name: 'length',
  needsReference: true,
  description: 'Cosine-scaled by length: shorter correct answers and longer wrong ones score higher.',
  options: {
    minCorrect: { type: 'number', default: 0.5, description: 'Reward of a correct answer at maxLength.' },
    maxCorrect: { type: 'number', default: 1.0, description: 'Reward of a correct answer at length 0.' },
    minWrong: { type: 'number', default: -1.0, description: 'Reward of a wrong answer at length 0.' },
    maxWrong: { type: 'number', default: -0.5, description: 'Reward of a wrong answer at maxLength.' },
    maxLength: { type: 'number', default: 0, min: 0, description: 'Length (tokens) where the curve ends; 0: the item\'s generation limit, else 1000.' },
  },
  prepare: (o, path) => cosineSettings(o, path),
  score: (input, s, ctx) => {
    const limit = s.maxLength || input.maxTokens || 1000;
    const progress = Math.min(ctx.tokens(), limit) / limit;
    const cosine = Math.cos(Math.PI * progress);
    const [atZero, atLimit] = ctx.verdict().correct ? [s.maxCorrect, s.minCorrect] : [s.minWrong, s.maxWrong];
    return atLimit + 0.5 * (atZero - atLimit) * (1 + cosine);
  },
};

function cosineSettings(o: Record<string, OptionValue>, path: string): CosineSettings {
  const s = o as unknown as CosineSettings;
  if (s.minCorrect > s.maxCorrect) throw new RewardSpecError(`${path}.minCorrect`, 'must not exceed maxCorrect');
  if (s.minWrong > s.maxWrong) throw new RewardSpecError(`${path}.minWrong`, 'must not exceed maxWrong');
  return { ...s };
}
