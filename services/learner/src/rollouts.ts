// The learner's side of the rollout exchange: prompt groups out to the generators' work
// queue, scored groups back from the run's own consumer on TEMPER_SCORED.
//
// Scored groups are acked only when the learner is done with them (commit()), so a learner
// that dies mid-step gets them again when it comes back: its consumer is recreated at start,
// which redelivers everything unacked at once instead of after the ack timeout.
import { AckPolicy, JsMsg } from '@nats-io/jetstream';
import { Bus, consumeMessages, parkMessage, publishMessage, streams, subjects } from '@temper/bus';
import { RolloutRequest, ScoredGroup } from '@temper/proto';
import type { Logger } from '@temper/service';

export class RolloutExchange {
  private readonly received = new Map<string, { group: ScoredGroup; msg: JsMsg }>();
  private waiters = new Set<() => void>();
  private stopConsuming?: () => Promise<void>;
  private readonly consumer: string;

  constructor(
    private readonly bus: Bus,
    private readonly runId: string,
    /** Groups asked for by an earlier attempt (before a resume) may come from discarded policies: dropped. */
    private readonly attempt: number,
    private readonly log: Logger,
  ) {
    this.consumer = `learner_${runId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  async start(): Promise<void> {
    await this.bus.jsm.consumers.delete(streams.scored.name, this.consumer).catch(() => undefined);
    await this.bus.jsm.consumers.add(streams.scored.name, {
      durable_name: this.consumer,
      ack_policy: AckPolicy.Explicit,
      filter_subject: subjects.scored(this.runId),
      ack_wait: 30 * 60 * 1e9, // held until the step is trained; a restart redelivers sooner
      max_ack_pending: 100_000,
    });
    const c = await consumeMessages(this.bus.js, ScoredGroup, { stream: streams.scored.name, consumer: this.consumer, manualAck: true }, async (d) => {
      const key = d.message.group?.key;
      if (!key) {
        this.log.error('scored group without a key; parked on the dead-letter subject', { subject: d.subject });
        await parkMessage(this.bus.js, d.raw, this.consumer, 'scored group without a key');
        return;
      }
      if (key.attempt !== this.attempt) {
        d.raw.ack();
        return;
      }
      const id = groupId(key.step, key.groupIndex);
      const prev = this.received.get(id);
      if (prev) prev.msg.ack(); // a second copy (another attempt): keep the newest
      this.received.set(id, { group: d.message, msg: d.raw });
      this.waiters.forEach((w) => w());
    });
    this.stopConsuming = c.stop;
  }

  /** Publishes one request per group; the same (step, group, attempt) is stored once. */
  async request(requests: RolloutRequest[]): Promise<void> {
    // All in flight at once: the generators can start on the first while the rest are stored.
    await Promise.all(
      requests.map((r) => {
        const k = r.key!;
        return publishMessage(this.bus.js, subjects.rolloutRequest(this.runId), RolloutRequest, r, {
          msgId: `${this.runId}/${k.step}/${k.groupIndex}/${k.attempt}`,
        });
      }),
    );
  }

  /**
   * Takes back the run's requests that no generator has sampled yet (a stage that stops early
   * leaves the next step's asked for; nobody will make the version they wait for). A request
   * a generator holds goes with it when its wait there runs out.
   */
  async withdrawRequests(): Promise<void> {
    await this.bus.jsm.streams.purge(streams.rolloutRequests.name, { filter: subjects.rolloutRequest(this.runId) });
  }

  /** Waits for the scored groups of `step` with these indices; rejects on timeout or abort. */
  async collect(step: number, groupIndices: number[], timeoutMs: number, signal?: AbortSignal): Promise<ScoredGroup[]> {
    const ids = groupIndices.map((g) => groupId(step, g));
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.waiters.delete(check);
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
      };
      const check = () => {
        if (ids.every((id) => this.received.has(id))) {
          done();
          resolve();
        }
      };
      const aborted = () => {
        done();
        reject(new Error('cancelled'));
      };
      const timer = setTimeout(() => {
        done();
        const missing = groupIndices.filter((g) => !this.received.has(groupId(step, g)));
        reject(new Error(`step ${step}: no scored rollouts for groups ${missing.join(', ')} within ${timeoutMs / 1000} s (are generators and scorers running?)`));
      }, timeoutMs);
      signal?.addEventListener('abort', aborted);
      this.waiters.add(check);
      check();
    });
    return ids.map((id) => this.received.get(id)!.group);
  }

  /** Acknowledges (and forgets) the groups of steps up to `step`: they are trained on. */
  commit(step: number): void {
    for (const [id, { group, msg }] of this.received) {
      if ((group.group?.key?.step ?? 0) <= step) {
        msg.ack();
        this.received.delete(id);
      }
    }
  }

  async stop(): Promise<void> {
    await this.stopConsuming?.();
    this.log.debug('rollout exchange stopped', { runId: this.runId });
  }
}

function groupId(step: number, groupIndex: number): string {
  return `${step}/${groupIndex}`;
}
