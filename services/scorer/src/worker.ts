// The JetStream side: pull rollout groups from TEMPER_ROLLOUTS on a durable consumer
// that all scorers share (so each group goes to one of them), score every completion on
// the pool and publish the ScoredGroup for the learner. The publish carries a msgId made
// of the group's ids and policy version, so a group delivered twice (a scorer died
// before its ack) is stored once: at-least-once delivery, one result.
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { Bus, consumeMessages, Delivery, publishMessage, streams, subjects } from '@temper/bus';
import { RolloutGroup, ScoredGroup } from '@temper/proto';
import { RewardSpecError, ScoreInput } from '@temper/rewards';
import type { Logger } from '@temper/service';
import type { ScoringPool } from './pool';

export interface WorkerOptions {
  consumer: string;
  /** '' for the whole stream. */
  filterSubject: string;
  log: Logger;
  /** How long a delivery may stay unacknowledged before it goes to another scorer. */
  ackWaitMs?: number;
  /** Deliveries before a group that keeps failing is given up on. */
  maxDeliver?: number;
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
    completionTokens: c.tokenIds.length,
  }));
  const rewards = await pool.score(group.reward, items);
  return { group, rewards, scoreSeconds: (performance.now() - t0) / 1000 };
}

export async function startRolloutWorker(bus: Bus, pool: ScoringPool, opts: WorkerOptions): Promise<{ stop(): Promise<void> }> {
  await ensureConsumer(bus, opts);
  const log = opts.log;
  const running = await consumeMessages(
    bus.js,
    RolloutGroup,
    { stream: streams.rollouts.name, consumer: opts.consumer, onError: (err) => log.warn('rollout group failed; it will be redelivered', { err }) },
    (d) => handle(bus, pool, d, log),
  );
  return { stop: () => running.stop() };
}

async function handle(bus: Bus, pool: ScoringPool, d: Delivery<RolloutGroup>, log: Logger): Promise<void> {
  const group = d.message;
  const problem = invalidGroup(group);
  if (problem) {
    // Redelivering cannot fix a malformed group; drop it loudly.
    log.error('dropping an invalid rollout group', { problem, subject: d.subject });
    d.raw.term(problem);
    return;
  }
  let scored: ScoredGroup;
  try {
    scored = await scoreGroup(pool, group);
  } catch (err) {
    if (err instanceof RewardSpecError) {
      log.error('dropping a rollout group with an invalid reward spec', { problem: err.message, key: group.key });
      d.raw.term(err.message);
      return;
    }
    throw err;
  }
  const traceparent = d.headers.traceparent;
  const ack = await publishMessage(bus.js, subjects.scored(group.key!.runId), ScoredGroup, scored, {
    msgId: scoredMsgId(group),
    headers: traceparent ? { traceparent } : undefined,
  });
  log.debug('scored group', { key: group.key, completions: group.completions.length, duplicate: ack.duplicate, seconds: scored.scoreSeconds });
}

function invalidGroup(g: RolloutGroup): string | null {
  if (!g.key) return 'key: required';
  if (!g.key.runId) return 'key.run_id: required';
  return null;
}

// The durable consumer all scorers share; created by whichever scorer comes first. It
// removes itself after a while without any scorer pulling (scale to zero), and a scorer
// that comes back creates it again; the work-queue stream keeps the groups meanwhile.
async function ensureConsumer(bus: Bus, opts: WorkerOptions): Promise<void> {
  const config = {
    durable_name: opts.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: (opts.ackWaitMs ?? 60000) * 1e6,
    max_deliver: opts.maxDeliver ?? 10,
    inactive_threshold: 60e9,
    ...(opts.filterSubject ? { filter_subject: opts.filterSubject } : {}),
  };
  try {
    await bus.jsm.consumers.info(streams.rollouts.name, opts.consumer);
  } catch (err) {
    if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    await bus.jsm.consumers.add(streams.rollouts.name, config);
    return;
  }
  // Another scorer made it; settings that cannot change in place are kept as they are.
  await bus.jsm.consumers.update(streams.rollouts.name, opts.consumer, config).catch((err: unknown) => {
    opts.log.warn('kept the existing consumer settings', { consumer: opts.consumer, err });
  });
}
