// Asking for prompt groups: each step's groups get consecutive indices (refills continue
// after the first P), and the prompts drawn for each step are counted so that a checkpoint
// records the data position the run resumes from.
import { RolloutRequest } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';
import type { PromptStream } from '../prompts';
import type { RolloutExchange } from '../rollouts';
import type { StageContext } from '../stages/context';
import type { GrpoSettings } from './config';

export class GroupRequests {
  private readonly nextIndex = new Map<number, number>();
  private readonly drawn = new Map<number, number>();

  constructor(
    private readonly ctx: StageContext,
    private readonly exchange: RolloutExchange,
    private readonly g: GrpoSettings,
    private readonly tokenizer: Tokenizer,
    private readonly prompts: PromptStream,
    private readonly attempt: number,
  ) {}

  /** Publishes `count` new groups of `step` for policy versions >= minVersion; returns their indices. */
  async request(step: number, count: number, minVersion: number): Promise<number[]> {
    const first = this.nextIndex.get(step) ?? 0;
    this.nextIndex.set(step, first + count);
    this.drawn.set(step, (this.drawn.get(step) ?? 0) + count);
    const requests = Array.from({ length: count }, (_, i) => {
      const item = this.prompts.next();
      const text = this.tokenizer.applyChatTemplate([{ role: 'user', content: item.prompt }], { addGenerationPrompt: true });
      return RolloutRequest.fromPartial({
        key: { runId: this.ctx.runId, step, groupIndex: first + i, attempt: this.attempt },
        prompt: { text, tokenIds: Array.from(this.tokenizer.encode(text)) },
        reference: item.reference,
        sampling: { ...this.g.sampling, n: this.g.groupSize, stopTokenIds: [...this.tokenizer.stopTokenIds] },
        minPolicyVersion: minVersion,
        reward: this.ctx.spec.reward,
      });
    });
    await this.exchange.request(requests);
    return requests.map((r) => r.key!.groupIndex);
  }

  /** The data position a checkpoint taken after `step` resumes from: later steps' prompts are drawn again. */
  cursorAfter(step: number): number {
    let ahead = 0;
    for (const [s, n] of this.drawn) if (s > step) ahead += n;
    return this.prompts.cursor - ahead;
  }

  /** Forgets the bookkeeping of steps that are done. */
  done(step: number): void {
    for (const s of [...this.drawn.keys()]) if (s <= step) this.drawn.delete(s);
    for (const s of [...this.nextIndex.keys()]) if (s <= step) this.nextIndex.delete(s);
  }
}
