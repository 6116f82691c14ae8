// What the generator serves: one policy (an engine model, its tokenizer, the checkpoint it
// came from, the run and policy version it is) at a time.
//
// Everything that samples goes through use(), which runs one piece of work at a time with the
// policy of that moment; a new policy replaces the old one only between two such pieces, so a
// batch is always sampled by one policy and no request is dropped by a swap. New versions come
// two ways: ensure() fetches the newest version of a run when a request needs it, and the
// policy events of the run being served (CheckpointCommitted on TEMPER_EVENTS) make the next
// version load in the background, to be swapped in at the next batch boundary.
import { ConsumerMessages, DeliverPolicy } from '@nats-io/jetstream';
import { Bus, streams, subjects } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-store';
import { engineConfig, Model } from '@temper/native';
import { CheckpointCommitted, CheckpointManifest, ModelSummary } from '@temper/proto';
import type { Logger } from '@temper/service';
import type { Tokenizer } from '@temper/tokenizers';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ModelLimits } from './sampling';
import { loadTokenizerForModel } from './tokenizer';

export interface ServedPolicy {
  model: Model;
  tokenizer: Tokenizer;
  manifest: CheckpointManifest;
  /** The run the checkpoint belongs to ('' for one of no run). */
  runId: string;
  version: number;
  limits: ModelLimits;
  summary: ModelSummary;
}

export interface PolicyManagerOptions {
  bus: Bus;
  store: CheckpointClient;
  log: Logger;
  /** Engine threads per model (default: all cores). */
  threads?: number;
  /** Where checkpoints are pulled to before loading (default: the OS temp dir). */
  workDir?: string;
  /** Load announced versions of the served run ahead of need (default true). */
  prefetch?: boolean;
}

/** A policy version a run has announced. */
export interface Announced {
  manifest: CheckpointManifest;
  version: number;
}

export class PolicyManager {
  private served?: ServedPolicy;
  /** Loaded ahead: swapped in at the next batch boundary when it is newer than what is served. */
  private staged?: ServedPolicy;
  private readonly loads = new Map<string, Promise<Omit<ServedPolicy, 'version'>>>();
  private queue: Promise<unknown> = Promise.resolve();
  private following?: { runId: string; stop(): Promise<void> };
  private closed = false;
  /** Sequences being sampled right now (for GetServingInfo). */
  sequencesInFlight = 0;
  /** Swaps so far, for logs and tests. */
  swaps = 0;

  constructor(private readonly opts: PolicyManagerOptions) {}

  get current(): ServedPolicy | undefined {
    return this.served;
  }

  /** A newer version of the served run, loaded ahead and waiting for the next batch boundary. */
  get loadedAhead(): ServedPolicy | undefined {
    return this.staged;
  }

  /**
   * Runs `work` with the policy of this moment, alone: swaps wait for it, and it waits for
   * the work before it. A newer version of the served run that was loaded ahead goes in first.
   */
  use<T>(work: (policy: ServedPolicy | undefined) => Promise<T>): Promise<T> {
    const run = async () => {
      const s = this.staged;
      if (s && this.served && s.runId === this.served.runId && s.version > this.served.version) this.swapIn(s);
      if (this.staged && this.served && (this.staged.runId !== this.served.runId || this.staged.version <= this.served.version)) this.staged = undefined;
      return work(this.served);
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Pulls a checkpoint and serves it as `version` (0: the version its run announced for it, if it is the newest). */
  async loadPolicy(ref: string, version = 0): Promise<ServedPolicy> {
    const loaded = await this.load(ref);
    let v = version;
    if (v === 0 && loaded.runId) {
      const latest = await this.latestAnnounced(loaded.runId);
      if (latest?.manifest.id === loaded.manifest.id) v = latest.version;
    }
    const served = await this.use(async () => {
      this.swapIn({ ...loaded, version: v });
      return this.served!;
    });
    this.follow(served.runId);
    return served;
  }

  /**
   * Makes the served policy one of `runId` at `minVersion` or newer, fetching the run's newest
   * announced version when it is not. Undefined when the run has announced no such version
   * yet (the caller retries later). A request for version 0 of a run that announced nothing
   * is served by whatever is loaded.
   */
  async ensure(runId: string, minVersion: number): Promise<ServedPolicy | undefined> {
    const ok = (p: ServedPolicy | undefined): p is ServedPolicy => p !== undefined && p.runId === runId && p.version >= minVersion;
    if (ok(this.served)) return this.served;
    if (ok(this.staged)) {
      const now = await this.use(async (p) => p);
      if (ok(now)) return now;
    }
    const latest = await this.latestAnnounced(runId);
    if (!latest || latest.version < minVersion) {
      if (minVersion === 0 && !latest && this.served) return this.served;
      return undefined;
    }
    const p: ServedPolicy = { ...(await this.load(latest.manifest.id)), version: latest.version };
    const served = await this.use(async () => {
      // Another caller may have moved on to something newer of this run meanwhile.
      if (!(this.served?.runId === runId && this.served.version >= p.version)) this.swapIn(p);
      return this.served!;
    });
    this.follow(runId);
    return served;
  }

  /** The newest CheckpointCommitted of a run that names a policy version (the last one on its subject). */
  async latestAnnounced(runId: string): Promise<Announced | undefined> {
    let msg;
    try {
      msg = await this.opts.bus.jsm.streams.getMessage(streams.events.name, { last_by_subj: subjects.checkpointCommitted(runId) });
    } catch (err) {
      if (/not found/i.test(String((err as Error)?.message))) return undefined;
      throw err;
    }
    if (!msg) return undefined;
    const c = CheckpointCommitted.decode(msg.data);
    if (c.manifest && c.policyVersion > 0) return { manifest: c.manifest, version: c.policyVersion };
    // The run's last checkpoint is no policy (e.g. one saved only to resume from): look through them all.
    return this.scanAnnounced(runId);
  }

  /** The highest policy version among all of a run's announcements. */
  private async scanAnnounced(runId: string): Promise<Announced | undefined> {
    const consumer = await this.opts.bus.js.consumers.get(streams.events.name, { filter_subjects: subjects.checkpointCommitted(runId), deliver_policy: DeliverPolicy.All });
    try {
      const pending = (await consumer.info(true)).num_pending;
      let best: Announced | undefined;
      if (pending === 0) return undefined;
      const messages = await consumer.fetch({ max_messages: pending, expires: 5000 });
      let seen = 0;
      for await (const m of messages) {
        const c = CheckpointCommitted.decode(m.data);
        if (c.manifest && c.policyVersion > (best?.version ?? 0)) best = { manifest: c.manifest, version: c.policyVersion };
        if (++seen >= pending) break;
      }
      return best;
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.following?.stop();
    this.following = undefined;
    await this.queue;
  }

  private swapIn(p: ServedPolicy): void {
    const before = this.served;
    this.served = p;
    if (this.staged === p) this.staged = undefined;
    this.swaps++;
    this.opts.log.info('serving policy', {
      run: p.runId,
      policy_version: p.version,
      checkpoint: p.manifest.id,
      previous_checkpoint: before?.manifest.id,
      previous_version: before?.version,
    });
  }

  /** Pulls and loads a checkpoint once, however many callers ask for it at the same time. */
  private load(ref: string): Promise<Omit<ServedPolicy, 'version'>> {
    const existing = this.loads.get(ref);
    if (existing) return existing;
    const started = Date.now();
    const work = (async () => {
      const dir = await fsp.mkdtemp(path.join(this.opts.workDir ?? os.tmpdir(), 'temper-generator-'));
      try {
        const { manifest, bytes } = await this.opts.store.pullDir(ref, dir);
        const tokenizer = loadTokenizerForModel(dir);
        const model = await Model.load(dir, { threads: this.opts.threads });
        const shape = engineConfig(model.config);
        if (tokenizer.vocabSize > shape.vocabSize) {
          throw new Error(`checkpoint ${manifest.id}: its tokenizer has ${tokenizer.vocabSize} ids but the model only ${shape.vocabSize}`);
        }
        const summary = ModelSummary.fromPartial({
          modelType: model.config.model_type,
          vocabSize: shape.vocabSize,
          hiddenSize: shape.hiddenSize,
          numLayers: shape.numLayers,
          dtype: typeof model.config.torch_dtype === 'string' ? model.config.torch_dtype : '',
          ...withoutDefaults(manifest.model),
        });
        this.opts.log.info('loaded checkpoint', { checkpoint: manifest.id, run: manifest.runId, step: manifest.step, bytes, seconds: (Date.now() - started) / 1000 });
        return { model, tokenizer, manifest, runId: manifest.runId, limits: { vocabSize: shape.vocabSize, maxPositions: shape.maxPositions }, summary };
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    })();
    this.loads.set(ref, work);
    const done = () => this.loads.delete(ref);
    work.then(done, done);
    return work;
  }

  /** Watches the run's policy announcements and loads each new version ahead of need. */
  private follow(runId: string): void {
    if (this.opts.prefetch === false || this.closed || !runId || this.following?.runId === runId) return;
    const previous = this.following;
    let messages: ConsumerMessages | undefined;
    let stopped = false;
    const f = {
      runId,
      stop: async () => {
        stopped = true;
        await messages?.close();
      },
    };
    this.following = f;
    void (async () => {
      try {
        await previous?.stop();
        const consumer = await this.opts.bus.js.consumers.get(streams.events.name, {
          // One subject as a string (filter_subject): servers before 2.10 know no filter_subjects.
          filter_subjects: subjects.checkpointCommitted(runId),
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
        if (stopped) return;
        messages = await consumer.consume();
        if (stopped) {
          await messages.close();
          return;
        }
        for await (const m of messages) {
          const c = CheckpointCommitted.decode(m.data);
          if (c.manifest && c.policyVersion > 0) await this.prefetch(runId, { manifest: c.manifest, version: c.policyVersion });
        }
      } catch (err) {
        if (!stopped) this.opts.log.warn('stopped following policy events', { run: runId, err });
      }
    })();
  }

  /** The newest version of the run that is served or staged (-1 when none). */
  private newestOf(runId: string): number {
    return Math.max(this.served?.runId === runId ? this.served.version : -1, this.staged?.runId === runId ? this.staged.version : -1);
  }

  private async prefetch(runId: string, a: Announced): Promise<void> {
    if (a.version <= this.newestOf(runId) || this.served?.runId !== runId) return;
    try {
      const p: ServedPolicy = { ...(await this.load(a.manifest.id)), version: a.version };
      if (p.version > this.newestOf(runId) && this.served?.runId === runId && this.following?.runId === runId) {
        this.staged = p;
        this.opts.log.info('policy loaded ahead', { run: runId, policy_version: p.version, checkpoint: p.manifest.id });
      }
    } catch (err) {
      this.opts.log.warn('could not load an announced policy ahead of need', { run: runId, policy_version: a.version, checkpoint: a.manifest.id, err });
    }
  }
}

/** The fields of a summary that are set (so a manifest without one does not blank what the config says). */
function withoutDefaults(m: ModelSummary | undefined): Partial<ModelSummary> {
  if (!m) return {};
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== '' && v !== 0)) as Partial<ModelSummary>;
}
