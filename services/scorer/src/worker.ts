// The JetStream side: pull rollout groups from TEMPER_ROLLOUTS on a durable consumer
// that all scorers share (so each group goes to one of them), score every completion on
// the pool and publish the ScoredGroup for the learner. The publish carries a msgId made
// of the group's ids and policy version, so a group delivered twice (a scorer died
// before its ack) is stored once: at-least-once delivery, one result. A group that cannot be
// scored (malformed, an invalid reward spec, or failing on every delivery) is parked on the
// dead-letter subject with the reason.
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { context, trace, Tracer } from '@opentelemetry/api';
import { Bus, consumeMessages, DEFAULT_MAX_DELIVERIES, Delivery, parkMessage, publishEncoded, streams, subjects } from '@temper/bus';
import { BinaryWriter, RolloutGroup, ScoredGroup } from '@temper/proto';
import { RewardSpecError, ScoreInput } from '@temper/rewards';
import type { Logger } from '@temper/service';
import { withSpan } from '@temper/telemetry';
import type { ScoringPool } from './pool';

export interface WorkerOptions {
  consumer: string;
  /** '' for the whole stream. */
  filterSubject: string;
  log: Logger;
  /** How long a delivery may stay unacknowledged before it goes to another scorer. */
  ackWaitMs?: number;
  /** Deliveries before a group that keeps failing is parked on the dead-letter subject (default 10). */
  maxDeliveries?: number;
  /** How often the consumer is checked (and retried while it cannot be created). */
  consumerCheckMs?: number;
  /** Groups scored at once (default 4). */
  concurrency?: number;
  /** Each group is scored in a span of this tracer, inside the trace it arrived with. */
  tracer?: Tracer;
}

/** The idempotency key of a group's scores. */
export function scoredMsgId(group: RolloutGroup): string {
  const k = group.key!;
  return `scored/${k.runId}/${k.step}/${k.groupIndex}/${k.attempt ?? 0}/v${group.policyVersion}`;
}

/** Scores one rollout group; what the worker does with each delivery. */
export async function scoreGroup(pool: ScoringPool, group: RolloutGroup): Promise<ScoredGroup> {
  const t0 = performance.now();
  const items: ScoreInput[] = group.completions.map((c) => ({
    completion: c.text,
    reference: group.reference,
    prompt: group.prompt?.text ?? '',
    // A conversation's length is what the model wrote, not the environment's answers.
    completionTokens: c.lossMask.length > 0 ? c.lossMask.reduce((a, b) => a + b, 0) : c.tokenIds.length,
    environmentRewards: c.environmentRewards,
  }));
  const rewards = await pool.score(group.reward, items);
  return { group, rewards, scoreSeconds: (performance.now() - t0) / 1000 };
}

/**
 * Starts consuming in the background. A consumer that cannot be created yet (NATS away,
 * or a work-queue stream that refuses an overlapping consumer) is retried rather than
 * taking the gRPC side down with it, and one that disappears is created again.
 */
export function startRolloutWorker(bus: Bus, pool: ScoringPool, opts: WorkerOptions): { ready: Promise<void>; stop(): Promise<void> } {
  const log = opts.log;
  let stopped = false;
  let running: { stop(): Promise<void> } | undefined;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const consumerCheckMs = opts.consumerCheckMs ?? 5000;

  const start = async (): Promise<void> => {
    while (!stopped && !running) {
      try {
        await ensureConsumer(bus, opts);
        running = await consumeConcurrently(bus, pool, opts);
        if (stopped) {
          await running.stop(); // stop() came while this was starting
          return;
        }
        log.info('consuming rollout groups', { stream: streams.rollouts.name, consumer: opts.consumer, filter: opts.filterSubject || '(all)' });
        markReady();
      } catch (err) {
        log.warn('cannot consume rollout groups yet; retrying', { consumer: opts.consumer, err: err instanceof Error ? err.message : String(err) });
        await sleep(consumerCheckMs);
      }
    }
  };
  void start();

  // The consumer removes itself when no scorer has pulled for a while, and the last scorer
  // to stop removes it; a scorer still running puts it back.
  // A pull subscription does not follow its consumer into a new life, so after putting the
  // consumer back, consuming starts over on it.
  let checking = false;
  const watch = setInterval(() => {
    if (!running || stopped || checking) return;
    checking = true;
    ensureConsumer(bus, opts, false)
      .then(async (created) => {
        if (!created || stopped) return;
        log.warn('the rollout consumer had gone; restored it', { consumer: opts.consumer });
        const old = running;
        running = undefined;
        await old?.stop();
        await start();
      })
      .catch((err: unknown) => log.warn('cannot restore the rollout consumer', { err: err instanceof Error ? err.message : String(err) }))
      .finally(() => (checking = false));
  }, consumerCheckMs);
  watch.unref();

  return {
    ready,
    stop: async () => {
      stopped = true;
      clearInterval(watch);
      await running?.stop();
      await removeConsumerIfIdle(bus, opts);
    },
  };
}

// One subscription hands deliveries to up to `concurrency` groups being scored: the handler
// returns once a group has a slot, the slot is free again as soon as the group is scored,
// and the group is acked (or nakked for redelivery) when its scores are published. Waiting
// for a publish holds no slot, so the groups of a step that score at once also publish at
// once. A subscription pulls messages in batches, so several subscriptions would still score
// one batch at a time each.
async function consumeConcurrently(bus: Bus, pool: ScoringPool, opts: WorkerOptions): Promise<{ stop(): Promise<void> }> {
  const log = opts.log;
  const limit = Math.max(1, opts.concurrency ?? 4);
  const scoring = new Set<Promise<void>>();
  const inFlight = new Set<Promise<void>>();
  const tracer = opts.tracer ?? trace.getTracer('temper.scorer');
  const maxDeliveries = opts.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
  const sub = await consumeMessages(
    bus.js,
    RolloutGroup,
    {
      stream: streams.rollouts.name,
      consumer: opts.consumer,
      manualAck: true,
      maxDeliveries,
      onError: (err) => log.warn('undecodable rollout group parked on the dead-letter subject', { err }),
    },
    async (d) => {
      while (scoring.size >= limit) await Promise.race(scoring);
      let release: () => void = () => {};
      const slot = new Promise<void>((resolve) => (release = resolve));
      scoring.add(slot);
      void slot.then(() => scoring.delete(slot));
      const work = withSpan(tracer, 'scorer.score_group', { parent: context.active(), attributes: groupAttributes(d.message) }, () => handle(bus, pool, d, log, release, opts.consumer))
        .then((outcome) => {
          if (outcome === 'published') d.raw.ack();
        })
        .catch(async (err: unknown) => {
          if (d.deliveryCount >= maxDeliveries) {
            log.error('rollout group failed on every delivery; parked on the dead-letter subject', { err, key: d.message.key, deliveries: d.deliveryCount });
            await parkMessage(bus.js, d.raw, opts.consumer, `failed on each of ${d.deliveryCount} deliveries, the last with: ${err instanceof Error ? err.message : String(err)}`);
            return;
          }
          log.warn('rollout group failed; it will be redelivered', { err, key: d.message.key });
          d.raw.nak(1000);
        })
        .finally(() => {
          release();
          inFlight.delete(work);
        });
      inFlight.add(work);
    },
  );
  return {
    stop: async () => {
      await sub.stop();
      await Promise.all(inFlight);
    },
  };
}

function groupAttributes(g: RolloutGroup): Record<string, string | number> {
  const k = g.key;
  return { 'temper.run_id': k?.runId ?? '', 'temper.step': k?.step ?? 0, 'temper.group_index': k?.groupIndex ?? 0, 'temper.completions': g.completions.length };
}

/** Scores a group and publishes its scores; `scored` is called once the scoring is done. */
async function handle(bus: Bus, pool: ScoringPool, d: Delivery<RolloutGroup>, log: Logger, scored: () => void, consumer: string): Promise<'published' | 'parked'> {
  const group = d.message;
  const problem = invalidGroup(group);
  if (problem) {
    // Redelivering cannot fix a malformed group; park it, loudly.
    log.error('parking an invalid rollout group', { problem, subject: d.subject });
    await parkMessage(bus.js, d.raw, consumer, `invalid rollout group: ${problem}`);
    return 'parked';
  }
  let result: ScoredGroup;
  try {
    result = await scoreGroup(pool, group);
    scored();
  } catch (err) {
    if (err instanceof RewardSpecError) {
      log.error('parking a rollout group with an invalid reward spec', { problem: err.message, key: group.key });
      await parkMessage(bus.js, d.raw, consumer, `invalid reward spec: ${err.message}`);
      return 'parked';
    }
    throw err;
  }
  // The trace context (the span of this group) goes along in the headers by itself.
  const ack = await publishEncoded(bus.js, subjects.scored(group.key!.runId), encodeScoredGroup(d.raw.data, result), { msgId: scoredMsgId(group) });
  log.debug('scored group', { key: group.key, completions: group.completions.length, duplicate: ack.duplicate, seconds: result.scoreSeconds });
  return 'published';
}

/**
 * ScoredGroup's encoding with the group's bytes as they arrived: field 1 (group) is a
 * length-delimited copy of the RolloutGroup message, so the bytes need not be encoded again
 * from the decoded group (protobuf fields may come in any order; this one comes first).
 */
export function encodeScoredGroup(groupBytes: Uint8Array, scored: ScoredGroup): Uint8Array {
  const w = new BinaryWriter().uint32((1 << 3) | 2).bytes(groupBytes); // field 1, length-delimited
  return ScoredGroup.encode({ ...scored, group: undefined }, w).finish();
}

function invalidGroup(g: RolloutGroup): string | null {
  if (!g.key) return 'key: required';
  if (!g.key.runId) return 'key.run_id: required';
  return null;
}

// The durable consumer all scorers share; created by whichever scorer comes first. It
// removes itself after a while without any scorer pulling (scale to zero), and a scorer
// that comes back creates it again; the work-queue stream keeps the groups meanwhile.
/** Creates the consumer if it is missing; true when it did. */
async function ensureConsumer(bus: Bus, opts: WorkerOptions, updateExisting = true): Promise<boolean> {
  const config = {
    durable_name: opts.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: (opts.ackWaitMs ?? 60000) * 1e6,
    // One past the bound, so the delivery after the last failure arrives to be parked.
    max_deliver: (opts.maxDeliveries ?? DEFAULT_MAX_DELIVERIES) + 1,
    inactive_threshold: 30e9,
    ...(opts.filterSubject ? { filter_subject: opts.filterSubject } : {}),
  };
  try {
    await bus.jsm.consumers.info(streams.rollouts.name, opts.consumer);
  } catch (err) {
    if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    await bus.jsm.consumers.add(streams.rollouts.name, config);
    return true;
  }
  if (!updateExisting) return false;
  // Another scorer made it; settings that cannot change in place are kept as they are.
  await bus.jsm.consumers.update(streams.rollouts.name, opts.consumer, config).catch((err: unknown) => {
    opts.log.warn('kept the existing consumer settings', { consumer: opts.consumer, err });
  });
  return false;
}

// When no other scorer is waiting on the consumer, this one was the last: remove it, so a
// stopped scorer leaves nothing behind on the work-queue stream (whose groups stay put
// for the next scorer, which creates the consumer again).
async function removeConsumerIfIdle(bus: Bus, opts: WorkerOptions): Promise<void> {
  try {
    const info = await bus.jsm.consumers.info(streams.rollouts.name, opts.consumer);
    if (info.num_waiting === 0 && info.num_ack_pending === 0) await bus.jsm.consumers.delete(streams.rollouts.name, opts.consumer);
  } catch (err) {
    opts.log.debug('left the rollout consumer in place', { err: err instanceof Error ? err.message : String(err) });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
