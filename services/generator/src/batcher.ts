// Batching prompt groups from many requests into one engine call. Groups go together when
// the served policy may produce all of them (same run, version new enough) and they sample
// the same way (temperature, top-p, top-k, n, stop tokens); max_new_tokens and stop strings
// may differ, because each completion is cut to its own group's limits afterwards.
//
// Seeds: the engine takes one seed per call and derives every (prompt, sample) stream from it
// and the prompt's position. The batch's seed is its first group's seed, a hash of (run, step,
// group, attempt, sampling.seed), so that group samples exactly what it would alone; the
// others get distinct streams from their positions. A retried group is reproduced exactly when
// it leads its batch (always when batches hold one group: maxBatchGroups 1).
//
// A reproducible request (a run with `reproducible: true`) is always sampled alone, seeded by
// (step, group, sampling.seed) without the run or the attempt: the engine then sees the same
// batch for it every time, on any generator, in any run of the same spec.
import type { Context } from '@opentelemetry/api';
import type { JsMsg } from '@nats-io/jetstream';
import type { GroupKey, RolloutRequest } from '@temper/proto';
import { createHash } from 'node:crypto';
import type { Sampling } from './sampling';

/** A request this worker holds (delivered, not yet acked). */
export interface PendingGroup {
  request: RolloutRequest;
  msg: JsMsg;
  /** The publisher's trace context. */
  context: Context;
  receivedAt: number;
}

export interface PolicyId {
  runId: string;
  version: number;
}

/** A deterministic seed in [0, 2^48) for one group. */
export function groupSeed(key: GroupKey | undefined, seed: number): number {
  const h = createHash('sha256').update(`${key?.runId ?? ''}\u0000${key?.step ?? 0}\u0000${key?.groupIndex ?? 0}\u0000${key?.attempt ?? 0}\u0000${seed}`).digest();
  return h.readUIntBE(0, 6);
}

/** The seed of a reproducible group: (step, group, seed) only. */
export function reproducibleSeed(key: GroupKey | undefined, seed: number): number {
  const h = createHash('sha256').update(`reproducible\u0000${key?.step ?? 0}\u0000${key?.groupIndex ?? 0}\u0000${seed}`).digest();
  return h.readUIntBE(0, 6);
}

/** The JetStream message id of a group's rollouts: one stored copy per (group, attempt, policy version). */
export function rolloutMsgId(key: GroupKey, policyVersion: number): string {
  const attempt = key.attempt > 0 ? `/a${key.attempt}` : '';
  return `${key.runId}/${key.step}/${key.groupIndex}${attempt}/v${policyVersion}`;
}

/** Groups with equal keys can share one engine call. */
export function samplingKey(s: Sampling): string {
  return JSON.stringify([s.temperature, s.topP, s.topK, s.n, [...s.stopTokenIds].sort((a, b) => a - b)]);
}

export function servedBy(r: RolloutRequest, p: PolicyId): boolean {
  return (r.key?.runId ?? '') === p.runId && r.minPolicyVersion <= p.version;
}

export interface BatchLimits {
  maxGroups: number;
  /** Prompts × samples in one engine call. */
  maxSequences: number;
}

/**
 * The next batch: `head` first, then the oldest pending groups the same policy can produce
 * with the same sampling, within the limits. `sampling` gives a group's checked parameters
 * (undefined for a group that cannot be sampled, which is left out).
 */
export function selectBatch<G>(head: G, pending: G[], key: (g: G) => string | undefined, sequences: (g: G) => number, limits: BatchLimits): G[] {
  const k = key(head);
  const batch = [head];
  let seqs = sequences(head);
  for (const g of pending) {
    if (batch.length >= limits.maxGroups) break;
    if (g === head || key(g) !== k) continue;
    if (seqs + sequences(g) > limits.maxSequences) continue;
    batch.push(g);
    seqs += sequences(g);
  }
  return batch;
}

/** Pending groups in arrival order, with a wait for the next one. */
export class PendingQueue<G> {
  private items: G[] = [];
  private waiters: (() => void)[] = [];

  get length(): number {
    return this.items.length;
  }

  all(): readonly G[] {
    return this.items;
  }

  push(g: G): void {
    this.items.push(g);
    this.wake();
  }

  remove(gs: Iterable<G>): void {
    const gone = new Set(gs);
    this.items = this.items.filter((g) => !gone.has(g));
  }

  /** Everything, emptying the queue. */
  drain(): G[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  /** Resolves when something more is queued, or when woken. */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when something is queued (or at once if something is), or when woken. */
  wait(): Promise<void> {
    if (this.items.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Waits for more groups to batch with: until the queue holds `count`, or `maxMs` have
   * passed, or nothing has arrived for `quietMs` while `more()` says nothing else is
   * waiting upstream (the last delivery reported no more pending messages). A step's
   * requests arrive together, so waiting out the whole of `maxMs` would only add latency.
   * `quietForMs`: how long ago the newest group came (groups held for a while, waiting for
   * their policy, need no wait for company when it comes).
   */
  async linger(o: { maxMs: number; quietMs: number; count: number; more: () => boolean; quietForMs?: number }): Promise<void> {
    const deadline = performance.now() + o.maxMs;
    let seen = this.items.length;
    let lastArrival = performance.now() - (o.quietForMs ?? 0);
    while (this.items.length < o.count) {
      const now = performance.now();
      if (this.items.length !== seen) {
        seen = this.items.length;
        lastArrival = now;
      }
      if (now >= deadline) return;
      const more = o.more();
      if (!more && now - lastArrival >= o.quietMs) return;
      const until = more ? deadline : Math.min(deadline, lastArrival + o.quietMs);
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(until - now)]);
    }
  }

  /** Lets every waiter go (on stop). */
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
