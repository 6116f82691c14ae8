// Asking for prompt groups: each step's groups get consecutive indices (refills continue
// after the first P), and the rows drawn for each step (bad dataset rows skipped on the way
// included) are counted so that a checkpoint records the data position the run resumes from.
import { RolloutRequest } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';
import { PromptStream, renderPrompt } from '../prompts';
import type { RolloutExchange } from '../rollouts';
import type { StageContext } from '../stages/context';
import type { GrpoSettings } from './config';

export class GroupRequests {
  private readonly nextIndex = new Map<number, number>();
  private readonly drawn = new Map<number, number>();
  /** Draws one request's prompts at a time, so each step's rows are its own. */
  private drawing: Promise<unknown> = Promise.resolve();

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
    const drawn = this.drawing.then(() => this.draw(step, first, count, minVersion));
    this.drawing = drawn.catch(() => undefined);
    const requests = await drawn;
    await this.exchange.request(requests);
    return requests.map((r) => r.key!.groupIndex);
  }

  private async draw(step: number, first: number, count: number, minVersion: number): Promise<RolloutRequest[]> {
    const [cursorBefore, skippedBefore] = [this.prompts.cursor, this.prompts.skipped];
    const requests: RolloutRequest[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const item = await this.prompts.next();
        const key = { runId: this.ctx.runId, step, groupIndex: first + i, attempt: this.attempt };
        const common = {
          key,
          reference: item.reference,
          sampling: { ...this.g.sampling, n: this.g.groupSize, stopTokenIds: [...this.tokenizer.stopTokenIds], seed: this.samplingSeed() },
          minPolicyVersion: minVersion,
          reward: this.ctx.spec.reward,
          reproducible: this.ctx.spec.reproducible,
          partialRolloutTokens: this.g.stage.partialRolloutTokens,
        };
        const chat = this.ctx.spec.model?.chat;
        if (this.g.environment) {
          // Multi-turn: the task as written; the generator renders the environment's opening.
          requests.push(RolloutRequest.fromPartial({ ...common, prompt: { text: item.prompt }, environment: this.g.environment, systemPrompt: chat?.systemPrompt, enableThinking: chat?.enableThinking }));
          continue;
        }
        const text = renderPrompt(this.tokenizer, item.prompt, chat);
        requests.push(RolloutRequest.fromPartial({ ...common, prompt: { text, tokenIds: Array.from(this.tokenizer.encode(text)) } }));
      }
    } finally {
      this.drawn.set(step, (this.drawn.get(step) ?? 0) + this.prompts.cursor - cursorBefore);
    }
    const skipped = this.prompts.skipped - skippedBefore;
    if (skipped > 0) this.ctx.log.warn('skipped bad dataset rows', { step, skipped, skipped_total: this.prompts.skipped });
    return requests;
  }

  /** The stage's sampling seed; a reproducible run's own seed when the stage sets none (runs of one spec then sample alike). */
  private samplingSeed(): number {
    return this.g.sampling.seed || (this.ctx.spec.reproducible ? Number(this.ctx.spec.seed) : 0);
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
