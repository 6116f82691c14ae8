// Which steps' rollouts are asked for, and getting them back. A step's groups are asked for
// once, inside the step's trace (see step-traces.ts), for the policy versions allowed to sample
// them; refills for groups dropped from a step follow; the step's scored groups are collected
// from the exchange and acknowledged once the step is trained.
import type { ScoredGroup } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';
import type { PromptStream } from '../prompts';
import { RolloutExchange } from '../rollouts';
import type { StageContext } from '../stages/context';
import { Behind } from './behind';
import type { GrpoSettings } from './config';
import { GroupRequests } from './requests';
import { StepTraces } from './step-traces';

export class StepRollouts {
  /** The indices of each step's first groups (refills get more). */
  private readonly firstGroups = new Map<number, number[]>();
  /** Steps up to this one have been asked for (or are being asked for, ahead). */
  private askedThrough: number;
  /** The requests of a step asked for ahead, on their way out. */
  private ahead?: Behind<void>;

  private constructor(
    private readonly ctx: StageContext,
    private readonly g: GrpoSettings,
    private readonly exchange: RolloutExchange,
    private readonly requests: GroupRequests,
    private readonly traces: StepTraces,
    doneThrough: number,
  ) {
    this.askedThrough = doneThrough;
  }

  /** Starts the run's exchange; steps after `doneThrough` are still to be asked for. */
  static async open(ctx: StageContext, g: GrpoSettings, tokenizer: Tokenizer, prompts: PromptStream, attempt: number, doneThrough: number): Promise<StepRollouts> {
    const exchange = new RolloutExchange(ctx.bus, ctx.runId, attempt, ctx.log);
    await exchange.start();
    const requests = new GroupRequests(ctx, exchange, g, tokenizer, prompts, attempt);
    return new StepRollouts(ctx, g, exchange, requests, new StepTraces(ctx.tracer, ctx.runId), doneThrough);
  }

  /** Runs a step in its trace (its requests, sent earlier, began it). */
  traced<T>(step: number, work: () => Promise<T>): Promise<T> {
    return this.traces.run(step, work);
  }

  /** Asks for every step through `last` not asked for yet, for policy versions >= `version`. */
  async askThrough(last: number, version: number): Promise<void> {
    while (this.askedThrough < last) await this.ask(++this.askedThrough, version);
  }

  /**
   * Starts asking for `step` (the one after those asked for) behind the work that follows: it
   * goes out once this turn of the event loop is over, so the engine is already training.
   */
  askAhead(step: number, version: number): void {
    if (step !== this.askedThrough + 1) throw new Error(`asking ahead for step ${step}, but steps through ${this.askedThrough} are asked for`);
    this.askedThrough = step;
    const work = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.ask(step, version));
    this.ahead = new Behind(work, `asking for the rollouts of step ${step}`);
  }

  /** Waits until the requests asked for ahead are out; throws when they could not be sent. */
  async aheadSent(): Promise<void> {
    await this.ahead?.result();
  }

  /** The scored groups of `step` with these indices (its first ones when none are given). */
  collect(step: number, indices = this.firstGroups.get(step) ?? []): Promise<ScoredGroup[]> {
    return this.exchange.collect(step, indices, this.ctx.rolloutTimeoutMs, this.ctx.signal);
  }

  /** Asks for `count` more groups of `step` (to replace dropped ones); their indices. */
  refill(step: number, count: number, version: number): Promise<number[]> {
    return this.requests.request(step, count, version);
  }

  /** The data position a checkpoint taken after `step` resumes from. */
  cursorAfter(step: number): number {
    return this.requests.cursorAfter(step);
  }

  /** `step` is trained: its groups are acknowledged and its bookkeeping forgotten. */
  done(step: number): void {
    this.exchange.commit(step);
    this.requests.done(step);
    this.firstGroups.delete(step);
  }

  /**
   * Ends the stage's rollouts: the requests being sent ahead are waited for (then withdrawn with
   * the rest when the stage did not finish: nobody will make the version they wait for), the
   * exchange stops. Returns what failed on the way, for a stage that is failing anyway to log.
   */
  async stop(finished: boolean): Promise<Error[]> {
    this.traces.endAll();
    const failures: Error[] = [];
    const ahead = await this.ahead?.end();
    if (ahead) failures.push(ahead);
    if (!finished) {
      await this.exchange.withdrawRequests().catch((err: unknown) => failures.push(new Error(`withdrawing the rollout requests left: ${String(err)}`, { cause: err })));
    }
    await this.exchange.stop();
    return failures;
  }

  private async ask(step: number, version: number): Promise<void> {
    const indices = await this.traces.within(step, () => this.requests.request(step, this.g.promptsPerStep, version));
    this.firstGroups.set(step, indices);
  }
}
