// The JetStream side of the generator: pulls rollout requests from the work queue (durable
// consumer "generators", shared by every replica), samples them in batches with the served
// policy and publishes one RolloutGroup per request to the run's rollout subject.
//
// Delivery is at-least-once. A request is acked only after its group is stored in
// TEMPER_ROLLOUTS; while it waits or is sampled the worker keeps telling JetStream it is
// working on it, so a long batch is not redelivered, and a generator that dies leaves its
// requests unacked: after ack_wait another generator gets them. The group's message id names
// (run, step, group, attempt, policy version), so a group published twice is stored once.
//
// A worker holds at most maxHeld requests at a time (fetching only what it has room for), so
// replicas share the queue instead of one of them hoarding it.
//
// A request may come before its policy version exists: in synchronous GRPO the learner asks
// for the next step's groups while it is still training the version that must sample them.
// Such a request is held (and kept alive) until that version's weights arrive, without
// holding up requests behind it that can be sampled now; it starts the moment they do.
import { AckPolicy, Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { context, Span, SpanStatusCode, trace, Tracer } from '@opentelemetry/api';
import { Bus, parkMessage, publishMessage, streams, subjects } from '@temper/bus';
import { Completion, RolloutGroup, RolloutRequest } from '@temper/proto';
import type { Logger } from '@temper/service';
import { contextFromHeaders, traceIds } from '@temper/telemetry';
import { groupSeed, PendingGroup, reproducibleSeed, PendingQueue, rolloutMsgId, samplingKey, selectBatch, servedBy, sleep } from './batcher';
import { GeneratorError, invalidArgument } from './errors';
import type { PolicyManager, ServedPolicy } from './policy';
import { EnvironmentSandbox, type Environment } from '@temper/environments';
import { runConversations } from './conversations';
import { environmentMaker, type EnvironmentFactories } from './environments';
import { checkSampling, promptTokens, Sampling, stopTokens, toCompletion } from './sampling';
import { generateInSegments, SegmentPolicy } from './segments';

export const DEFAULT_CONSUMER = 'generators';

export interface WorkerOptions {
  bus: Bus;
  policy: PolicyManager;
  log: Logger;
  tracer: Tracer;
  /** This replica's id, written into every RolloutGroup. */
  generatorId: string;
  /** Durable consumer name (default "generators": all replicas share it). */
  consumer?: string;
  /** Only requests on this subject (default: every run's). */
  filterSubject?: string;
  /** How long JetStream waits for an ack before redelivering (default 60 s). */
  ackWaitMs?: number;
  /** Groups per engine call (default 16). */
  maxBatchGroups?: number;
  /** Sequences (groups × n) per engine call (default 256). */
  maxBatchSequences?: number;
  /** Requests held at once, sampled or waiting (default 2 × maxBatchGroups). */
  maxHeld?: number;
  /** Longest wait for more requests before sampling a partial batch (default 5 ms). */
  lingerMs?: number;
  /**
   * A partial batch is sampled sooner when no request has come for this long and JetStream
   * said with the last one that nothing more is pending (default 1 ms).
   */
  lingerQuietMs?: number;
  /** Delay before a request that cannot be served yet is redelivered (default 1 s). */
  retryDelayMs?: number;
  /** Deliveries of one request before it is parked on the dead-letter subject (default 100). */
  maxDeliveries?: number;
  /**
   * How long a request for a version of the followed run that nobody has announced yet is held
   * here waiting for it (default 10 min; a learner asks for a step's rollouts while it trains
   * the policy that will sample them). Past that it goes back to the queue.
   */
  aheadWaitMs?: number;
  /** Environments served besides the built-in ones, by name (an embedding's own). */
  environments?: EnvironmentFactories;
  /** Called when a batch starts sampling (observability, tests). */
  onBatch?: (groups: RolloutRequest[], policy: ServedPolicy) => void;
}

export interface WorkerStats {
  batches: number;
  groupsPublished: number;
  duplicates: number;
  rejected: number;
}

/** Creates the shared durable consumer when it is missing; sets its ack_wait when it differs. */
export async function ensureGeneratorConsumer(bus: Bus, name: string, ackWaitMs: number, filterSubject?: string): Promise<void> {
  const ackWait = Math.round(ackWaitMs * 1e6);
  try {
    const info = await bus.jsm.consumers.info(streams.rolloutRequests.name, name);
    if (info.config.ack_wait !== ackWait) await bus.jsm.consumers.update(streams.rolloutRequests.name, name, { ack_wait: ackWait });
    return;
  } catch (err) {
    if (!/not found/i.test(String((err as Error)?.message))) throw err;
  }
  await bus.jsm.consumers.add(streams.rolloutRequests.name, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWait,
    max_deliver: -1,
    max_ack_pending: 100_000,
    ...(filterSubject ? { filter_subject: filterSubject } : {}),
  });
}

interface Checked {
  sampling: Sampling;
  /** Single-turn: the prompt's ids. Multi-turn: empty until the environment opens the conversation. */
  prompt: Int32Array;
  /** Multi-turn: makes one conversation's environment. */
  makeEnvironment?: () => Environment;
}

export class RolloutWorker {
  readonly stats: WorkerStats = { batches: 0, groupsPublished: 0, duplicates: 0, rejected: 0 };
  private readonly pending = new PendingQueue<PendingGroup>();
  private readonly inFlight = new Set<PendingGroup>();
  /** Where users' environment modules run (a thread, started with the first). */
  private readonly sandbox = new EnvironmentSandbox();
  private running = false;
  private abandoned = false;
  private fetching?: ConsumerMessages;
  private heartbeat?: NodeJS.Timeout;
  private loops: Promise<void>[] = [];
  private readonly o: Required<Omit<WorkerOptions, 'filterSubject' | 'onBatch' | 'environments'>> & Pick<WorkerOptions, 'filterSubject' | 'onBatch' | 'environments'>;

  constructor(opts: WorkerOptions) {
    const maxBatchGroups = opts.maxBatchGroups ?? 16;
    this.o = {
      consumer: DEFAULT_CONSUMER,
      ackWaitMs: 60_000,
      maxBatchSequences: 256,
      maxHeld: 2 * maxBatchGroups,
      lingerMs: 5,
      lingerQuietMs: 1,
      retryDelayMs: 1000,
      aheadWaitMs: 600_000,
      maxDeliveries: 100,
      ...opts,
      maxBatchGroups,
    };
  }

  async start(): Promise<void> {
    await ensureGeneratorConsumer(this.o.bus, this.o.consumer, this.o.ackWaitMs, this.o.filterSubject);
    this.running = true;
    // Well inside ack_wait, so a held request is never redelivered while this worker lives.
    this.heartbeat = setInterval(() => this.keepAlive(), Math.max(100, Math.floor(this.o.ackWaitMs / 3)));
    this.loops = [this.pullLoop(), this.batchLoop()];
    this.o.log.info('rollout worker started', { consumer: this.o.consumer, ack_wait_ms: this.o.ackWaitMs, max_batch_groups: this.o.maxBatchGroups, generator_id: this.o.generatorId });
  }

  /** Finishes the batch being sampled, hands back what is still waiting (nak), and stops. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.fetching?.close();
    // The server may still hold this worker's pull request: until it has seen the unsubscribe,
    // it would hand a request published now to an inbox nobody reads, for ack_wait.
    await this.o.bus.nc.flush().catch(() => undefined);
    this.pending.wake();
    await Promise.all(this.loops);
    for (const g of this.pending.drain()) g.msg.nak();
    clearInterval(this.heartbeat);
    await this.sandbox.close();
  }

  /**
   * Stops as a crash would: nothing more is published, acked or nakked and no heartbeat is
   * sent, so the held requests go to another generator after ack_wait. For tests.
   */
  abandon(): void {
    this.abandoned = true;
    this.running = false;
    clearInterval(this.heartbeat);
    void this.fetching?.close();
    this.pending.wake();
  }

  private keepAlive(): void {
    if (this.abandoned) return;
    for (const g of this.pending.all()) g.msg.working();
    for (const g of this.inFlight) g.msg.working();
  }

  private async pullLoop(): Promise<void> {
    // Looked up inside the retry loop: a JetStream request that times out (a loaded or
    // restarting nats-server) is retried like a failed fetch instead of ending the process.
    let consumer: Consumer | undefined;
    while (this.running) {
      const room = this.o.maxHeld - this.pending.length - this.inFlight.size;
      if (room <= 0) {
        await sleep(5);
        continue;
      }
      try {
        consumer ??= await this.o.bus.js.consumers.get(streams.rolloutRequests.name, this.o.consumer);
        this.fetching = await consumer.fetch({ max_messages: room, expires: 5000 });
        for await (const m of this.fetching) this.hold(m);
      } catch (err) {
        if (!this.running) break;
        this.o.log.warn('fetching rollout requests failed; retrying', { err });
        consumer = undefined;
        await sleep(1000);
        // The consumer may have been deleted: put it back.
        await ensureGeneratorConsumer(this.o.bus, this.o.consumer, this.o.ackWaitMs, this.o.filterSubject).catch(() => undefined);
      }
    }
  }

  private hold(m: JsMsg): void {
    if (!this.running) {
      if (!this.abandoned) m.nak();
      return;
    }
    if (m.info.deliveryCount > this.o.maxDeliveries) {
      this.o.log.error('rollout request delivered too often; parked on the dead-letter subject', { subject: m.subject, deliveries: m.info.deliveryCount });
      this.stats.rejected++;
      void parkMessage(this.o.bus.js, m, this.o.consumer, `delivered ${m.info.deliveryCount} times without being sampled (the bound is ${this.o.maxDeliveries})`);
      return;
    }
    let request: RolloutRequest;
    try {
      request = RolloutRequest.decode(m.data);
    } catch (err) {
      this.o.log.error('undecodable rollout request parked on the dead-letter subject', { err, subject: m.subject });
      this.stats.rejected++;
      void parkMessage(this.o.bus.js, m, this.o.consumer, `undecodable: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const headers: Record<string, string> = {};
    if (m.headers) for (const k of m.headers.keys()) headers[k] = m.headers.get(k);
    this.pending.push({ request, msg: m, context: contextFromHeaders(headers), receivedAt: Date.now() });
  }

  private async batchLoop(): Promise<void> {
    while (this.running) {
      try {
        await this.nextBatch();
      } catch (err) {
        // A bug, not a bad request: log it, give the requests back, keep serving.
        this.o.log.error('rollout batch failed', { err });
        if (!this.abandoned) for (const g of this.pending.drain()) g.msg.nak(this.o.retryDelayMs);
        await sleep(this.o.retryDelayMs);
      }
    }
  }

  private async nextBatch(): Promise<void> {
    await this.pending.wait();
    if (!this.running) return;
    await this.pending.linger({
      maxMs: this.o.lingerMs,
      quietMs: this.o.lingerQuietMs,
      count: this.o.maxBatchGroups,
      more: () => (this.pending.all().at(-1)?.msg.info.pending ?? 0) > 0,
      quietForMs: Date.now() - (this.pending.all().at(-1)?.receivedAt ?? Date.now()),
    });
    if (!this.running) return;
    const head = this.pending.all().find((g) => !this.waitsAhead(g));
    if (!head) {
      // Everything held waits for a version to come: until one does, a request arrives, or the oldest has waited long enough.
      const oldest = Math.min(...this.pending.all().map((g) => g.receivedAt));
      await Promise.race([this.pending.next(), this.o.policy.changed(Math.max(1, oldest + this.o.aheadWaitMs - Date.now()))]);
      return;
    }
    const key = head.request.key;
    if (!key?.runId) {
      this.reject(head, invalidArgument('key.run_id', 'is required'));
      return;
    }
    let policy: ServedPolicy | undefined;
    try {
      policy = await this.o.policy.ensure(key.runId, head.request.minPolicyVersion);
    } catch (err) {
      this.groupLog(head).error('could not load the policy this request needs; retrying later', { err, min_policy_version: head.request.minPolicyVersion });
    }
    if (!this.running) return;
    if (!policy) {
      this.groupLog(head).info('the policy version this request needs is not available yet; retrying later', { min_policy_version: head.request.minPolicyVersion });
      this.pending.remove([head]);
      head.msg.nak(this.o.retryDelayMs);
      return;
    }
    await this.o.policy.use(async (p) => {
      if (!p || !this.running) return;
      const batch = this.select(head, p);
      if (batch.length === 0) return; // the policy changed in between: look again
      this.pending.remove(batch.map((b) => b.g));
      batch.forEach((b) => this.inFlight.add(b.g));
      try {
        await this.sample(p, batch);
      } finally {
        batch.forEach((b) => this.inFlight.delete(b.g));
      }
    });
  }

  /** A request for a version that is still to come, within the time it may wait for it. */
  private waitsAhead(g: PendingGroup): boolean {
    const key = g.request.key;
    return !!key?.runId && Date.now() - g.receivedAt < this.o.aheadWaitMs && this.o.policy.isAhead(key.runId, g.request.minPolicyVersion);
  }

  /** The batch led by `head` that policy `p` can sample; requests that can never be sampled are terminated. */
  private select(head: PendingGroup, p: ServedPolicy): { g: PendingGroup; c: Checked }[] {
    const checked = new Map<PendingGroup, Checked>();
    const check = (g: PendingGroup): Checked | undefined => {
      if (checked.has(g)) return checked.get(g);
      try {
        const sampling = checkSampling(g.request.sampling, p.limits);
        const env = g.request.environment;
        const c: Checked = env
          ? { sampling, prompt: new Int32Array(0), makeEnvironment: environmentMaker(env, this.sandbox, this.o.environments) }
          : { sampling, prompt: promptTokens(g.request.prompt, p.tokenizer, p.limits, sampling.maxNewTokens) };
        checked.set(g, c);
        return c;
      } catch (err) {
        if (!(err instanceof GeneratorError)) throw err;
        this.reject(g, err);
        return undefined;
      }
    };
    if (!servedBy(head.request, p) && !(head.request.minPolicyVersion === 0 && p.runId !== head.request.key?.runId)) return [];
    if (!check(head)) return [];
    // A reproducible group's samples must not depend on its batch: it shares one only with other
    // reproducible single-turn groups, and only where the engine is batch-invariant; else alone.
    const reproducible = head.request.reproducible;
    if (reproducible && !(this.o.policy.batchInvariant && !checked.get(head)!.makeEnvironment)) return [{ g: head, c: checked.get(head)! }];
    const candidates = this.pending.all().filter((g) => g === head || (servedBy(g.request, p) && g.request.reproducible === reproducible));
    const batch = selectBatch(
      head,
      candidates,
      (g) => {
        const c = check(g);
        // Conversations take turns in engine calls of their own; partial rollouts sample in segments of one length.
        return c && `${samplingKey(c.sampling)}/${g.request.partialRolloutTokens}` + (c.makeEnvironment ? '/conversation' : '');
      },
      (g) => checked.get(g)?.sampling.n ?? 1,
      { maxGroups: this.o.maxBatchGroups, maxSequences: this.o.maxBatchSequences },
    );
    return batch.filter((g) => checked.has(g)).map((g) => ({ g, c: checked.get(g)! }));
  }

  /** Parks a request that can never be sampled on the dead-letter subject, with the reason (not redelivered). */
  private reject(g: PendingGroup, err: GeneratorError): void {
    this.stats.rejected++;
    this.groupLog(g).error('rollout request rejected; parked on the dead-letter subject', { reason: err.message });
    this.pending.remove([g]);
    void parkMessage(this.o.bus.js, g.msg, this.o.consumer, `rejected: ${err.message}`);
  }

  private async sample(p: ServedPolicy, batch: { g: PendingGroup; c: Checked }[]): Promise<void> {
    const lead = batch[0];
    const s = lead.c.sampling;
    const spans = batch.map(({ g }) =>
      this.o.tracer.startSpan(
        'generator.generate',
        {
          attributes: {
            'temper.run_id': g.request.key?.runId ?? '',
            'temper.step': g.request.key?.step ?? 0,
            'temper.group_index': g.request.key?.groupIndex ?? 0,
            'temper.policy_version': p.version,
            'temper.batch_groups': batch.length,
            'temper.samples': s.n,
          },
        },
        g.context,
      ),
    );
    this.stats.batches++;
    this.o.onBatch?.(
      batch.map((b) => b.g.request),
      p,
    );
    const started = performance.now();
    let results: { prompt: Int32Array; completions: Completion[] }[];
    this.o.policy.sequencesInFlight += batch.length * s.n;
    try {
      results = lead.c.makeEnvironment ? await this.converse(p, batch) : await this.generate(p, batch);
    } catch (err) {
      spans.forEach((span) => endWithError(span, err));
      this.o.log.error('sampling a batch failed; its requests will be redelivered', { err, groups: batch.length, policy_version: p.version });
      if (!this.abandoned) batch.forEach((b) => b.g.msg.nak(this.o.retryDelayMs));
      return;
    } finally {
      this.o.policy.sequencesInFlight -= batch.length * s.n;
    }
    const seconds = (performance.now() - started) / 1000;
    if (this.abandoned) return;
    await Promise.all(
      batch.map(async ({ g }, i) => {
        const span = spans[i];
        const key = g.request.key!;
        const log = this.groupLog(g, span);
        try {
          const group: RolloutGroup = {
            key,
            prompt: { text: g.request.prompt?.text ?? '', tokenIds: Array.from(results[i].prompt) },
            reference: g.request.reference,
            completions: results[i].completions,
            policyVersion: p.version,
            reward: g.request.reward,
            generatorId: this.o.generatorId,
            // The group's share of the engine call, so a step's groups add up to the time sampled.
            generateSeconds: seconds / batch.length,
          };
          const ack = await context.with(trace.setSpan(g.context, span), () =>
            publishMessage(this.o.bus.js, subjects.rollout(key.runId), RolloutGroup, group, { msgId: rolloutMsgId(key, p.version) }),
          );
          g.msg.ack();
          if (ack.duplicate) this.stats.duplicates++;
          else this.stats.groupsPublished++;
          span.setAttribute('temper.duplicate', ack.duplicate);
          span.end();
          log.info('rollout group published', {
            policy_version: p.version,
            samples: group.completions.length,
            tokens: group.completions.reduce((t, x) => t + x.tokenIds.length, 0),
            batch_groups: batch.length,
            generate_seconds: seconds,
            duplicate: ack.duplicate,
            delivery: g.msg.info.deliveryCount,
          });
        } catch (err) {
          endWithError(span, err);
          log.error('publishing a rollout group failed; the request will be redelivered', { err });
          if (!this.abandoned) g.msg.nak(this.o.retryDelayMs);
        }
      }),
    );
  }

  /** One engine call samples every group's n completions. */
  private async generate(p: ServedPolicy, batch: { g: PendingGroup; c: Checked }[]): Promise<{ prompt: Int32Array; completions: Completion[] }[]> {
    const lead = batch[0];
    const s = lead.c.sampling;
    const call = {
      prompts: batch.map((b) => b.c.prompt),
      maxNewTokens: Math.max(...batch.map((b) => b.c.sampling.maxNewTokens)),
      temperature: s.temperature,
      topP: s.topP,
      topK: s.topK,
      stopTokens: stopTokens(s, p.tokenizer),
      seed: seedOf(lead.g.request, s.seed),
      // Reproducible groups batch only on a batch-invariant engine, each drawing from its own seed.
      seeds: lead.g.request.reproducible ? batch.map(({ g, c }) => seedOf(g.request, c.sampling.seed)) : undefined,
      n: s.n,
    };
    const segmentTokens = lead.g.request.partialRolloutTokens;
    const completions = segmentTokens > 0 ? await generateInSegments({ ...call, segmentTokens, policy: this.newestOf(p) }) : await p.model.generate(call);
    return batch.map(({ c }, i) => ({
      prompt: c.prompt,
      completions: completions.slice(i * s.n, (i + 1) * s.n).map((x) => {
        const out = toCompletion(x, p.tokenizer, c.sampling.maxNewTokens, c.sampling.stopStrings);
        // A partial rollout's versions, cut where its tokens were cut.
        return 'versions' in x ? { ...out, tokenPolicyVersions: (x.versions as number[]).slice(0, out.tokenIds.length) } : out;
      }),
    }));
  }

  /** Every group's n conversations, taking turns together (see conversations.ts). */
  private converse(p: ServedPolicy, batch: { g: PendingGroup; c: Checked }[]): Promise<{ prompt: Int32Array; completions: Completion[] }[]> {
    return runConversations(
      p,
      batch.map(({ g, c }) => ({ request: g.request, sampling: c.sampling, makeEnvironment: c.makeEnvironment!, seed: seedOf(g.request, c.sampling.seed) })),
    );
  }

  /**
   * The policy a partial rollout's next segment samples with: the newest of `served`'s run
   * loaded here, `served` itself until a newer one is staged. Nothing else samples with a
   * staged policy before it is swapped in, and this batch holds the policy queue meanwhile.
   */
  private newestOf(served: ServedPolicy): () => SegmentPolicy {
    let current: SegmentPolicy = served;
    return () => {
      const ahead = this.o.policy.loadedAhead;
      if (ahead && ahead.runId === served.runId && ahead.version > current.version) {
        this.o.log.info('partial rollout goes on with a newer policy', { run: served.runId, from_version: current.version, policy_version: ahead.version });
        current = ahead;
      }
      return current;
    };
  }

  private groupLog(g: PendingGroup, span?: Span): Logger {
    const k = g.request.key;
    const ids = traceIds(span ? trace.setSpan(g.context, span) : g.context);
    return this.o.log.child({ run: k?.runId, step: k?.step, group: k?.groupIndex, attempt: k?.attempt, ...ids });
  }
}

function endWithError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}

/** A group's sampling seed: (step, group, seed) alone in a reproducible run, else also its attempt and run. */
function seedOf(request: RolloutRequest, seed: number): number {
  return request.reproducible ? reproducibleSeed(request.key, seed) : groupSeed(request.key, seed);
}
