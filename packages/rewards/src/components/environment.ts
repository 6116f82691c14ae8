// environment: the reward parts a multi-turn rollout's environment gave (countdown's and
// guess_number's "solved", a user environment's own), summed over the conversation. A
// completion without any (a single-turn rollout) scores 0.
import { RewardComponent } from '../types';

interface EnvironmentSettings {
  part: string;
}

export const environment: RewardComponent<EnvironmentSettings> = {
  name: 'environment',
  description: "The environment's reward parts of a multi-turn rollout: the one named by `part`, or their sum.",
  options: {
    part: { type: 'string', default: '', description: 'The reward part to take (e.g. "solved"); empty: the sum of all parts.' },
  },
  prepare: (o) => ({ part: o.part as string }),
  score: (input, s) => {
    const parts = input.environmentRewards ?? {};
    if (s.part) return parts[s.part] ?? 0;
    return Object.values(parts).reduce((a, b) => a + b, 0);
  },
};
