// overlong: the soft overlong punishment of DAPO (2025). Nothing while the completion
// stays buffer tokens clear of the generation limit, then a linear ramp to -penalty at
// the limit, and -penalty beyond it. A completion cut off by the limit usually has no
// answer; this tells the policy so smoothly instead of only through a zero accuracy.
import { RewardComponent } from '../types';

interface OverlongSettings {
  maxTokens: number;
  buffer: number;
  penalty: number;
}

export const overlong: RewardComponent<OverlongSettings> = {
  name: 'overlong',
  description: 'Linear penalty over the last `buffer` tokens before the generation limit; -penalty at and past it.',
  options: {
    maxTokens: { type: 'number', default: 0, min: 0, description: 'Generation limit in tokens; 0: the item\'s own limit (no penalty when unknown).' },
    buffer: { type: 'number', default: 256, min: 1, description: 'Width (tokens) of the ramp below the limit.' },
    penalty: { type: 'number', default: 1, min: 0, description: 'Size of the penalty at the limit.' },
  },
  prepare: (o) => ({ maxTokens: o.maxTokens as number, buffer: o.buffer as number, penalty: o.penalty as number }),
  score: (input, s, ctx) => {
    const limit = s.maxTokens || input.maxTokens || 0;
    if (limit <= 0) return 0;
    const length = ctx.tokens();
    const buffer = Math.min(s.buffer, limit);
    const free = limit - buffer;
    if (length <= free) return 0;
    if (length >= limit) return { value: -s.penalty, flags: ['overlong'] };
    return (-s.penalty * (length - free)) / buffer;
  },
};
