// What the generator serves: one policy (an engine model, its tokenizer, the checkpoint it
// came from, the run and policy version it is) at a time.
//
// Everything that samples goes through use(), which runs one piece of work at a time with the
// policy of that moment; a new policy replaces the old one only between two such pieces, so a
// batch is always sampled by one policy and no request is dropped by a swap. New versions come
// two ways: ensure() fetches the newest version of a run when a request needs it, and the
// policy events of the run being served (CheckpointCommitted on TEMPER_EVENTS) make the next
// version load in the background, to be swapped in at the next batch boundary.
//
// A version's weights need not come from the store: the learner publishes each new version
// (PolicyPublished, durable: the number is never given to other weights) and streams its
// weights to the run's generators before it uploads the checkpoint (see @temper/bus
// weights.ts). Weights that arrive whole, hash to what the learner sent, and fit the served
// model (same config; the tokenizer is the run's) are loaded into a spare model and staged
// at once, so the next batch samples with them while the checkpoint is still uploading. When
// the checkpoint is committed it is attached to the version it holds; a commit whose weights
// are not the ones streamed (never seen in practice) is pulled from the store and replaces them.
// A version that was not streamed, or not whole, is pulled from the store once committed.
//
// A policy with adapters (a GRPO stage that trains them) is its base model with the adapters
// on, unmerged: its versions stream and store the adapters alone (a checkpoint of adapters
// names the one holding their base). Streamed adapters go into a spare model with the same
// base and adapters (the policy served before), or into a copy of the served one's base.
import { ConsumerMessages, DeliverPolicy } from '@nats-io/jetstream';
import { Bus, lastEvent, StreamedWeights, streams, subjects, subscribeWeights } from '@temper/bus';
import { CheckpointClient, pullPolicyDir } from '@temper/checkpoint-client';
import { type CreateOptions, engineConfig, HfConfig, Model } from '@temper/native';
import { CheckpointCommitted, CheckpointManifest, ModelSummary, PolicyPublished } from '@temper/proto';
import { ADAPTER_BASE_LABEL, ADAPTER_DIR, ADAPTER_WEIGHTS_FILE, type Logger, OPTIMIZER_FILE, RUN_STATE_FILE, WEIGHTS_FILE } from '@temper/service';
import { loadModelTokenizer, Tokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ModelLimits } from './sampling';

/** What the generator's models are made with (the same for load: no optimizer state). */
type EngineOptions = Pick<CreateOptions, 'threads' | 'precision' | 'batchInvariant' | 'frozen'>;

export interface ServedPolicy {
  model: Model;
  tokenizer: Tokenizer;
  manifest: CheckpointManifest;
  /** The run the checkpoint belongs to ('' for one of no run). */
  runId: string;
  version: number;
  limits: ModelLimits;
  summary: ModelSummary;
  /** With adapters: the checkpoint holding the base weights under them ('' without adapters). */
  base: string;
}

export interface PolicyManagerOptions {
  bus: Bus;
  store: CheckpointClient;
  log: Logger;
  /** Engine threads per model (default: all cores). */
  threads?: number;
  /** What the engine's products read (default: the engine's, fp32 on the CPU); TEMPER_GENERATOR_PRECISION. */
  precision?: 'fp32' | 'bf16';
  /** Every model in the engine's batch-invariant mode; TEMPER_GENERATOR_BATCH_INVARIANT. */
  batchInvariant?: boolean;
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

/** How long a request for a version not here yet waits for it before going back to the queue. */
const ENSURE_WAIT_MS = 1000;
/** What a learner checkpoint holds for resuming a run; the engine loads none of it to serve. */
const LEARNER_STATE_FILES = new Set([OPTIMIZER_FILE, RUN_STATE_FILE]);

export class PolicyManager {
  private served?: ServedPolicy;
  /** Loaded ahead: swapped in at the next batch boundary when it is newer than what is served. */
  private staged?: ServedPolicy;
  private readonly loads = new Map<string, Promise<Omit<ServedPolicy, 'version'>>>();
  /** Announced versions being made ready (streamed weights or a pull), once each. */
  private readonly readying = new Map<string, Promise<ServedPolicy>>();
  /** The newest streamed weights, being loaded into a model and staged (undefined: they could not be). */
  private streamed?: { runId: string; version: number; staged: Promise<ServedPolicy | undefined> };
  /** Called when a version may have become available (streamed weights staged, a commit seen). */
  private waiters = new Set<() => void>();
  /**
   * A model no longer served, kept to load streamed weights into (making one costs more), and
   * the base checkpoint under its adapters ('' without adapters): streamed adapters go only
   * into a model with their base.
   */
  private spare?: { model: Model; base: string };
  private queue: Promise<unknown> = Promise.resolve();
  private following?: { runId: string; stop(): Promise<void>; announced: number };
  private closed = false;
  /** Sequences being sampled right now (for GetServingInfo). */
  sequencesInFlight = 0;
  /** Swaps so far, for logs and tests. */
  swaps = 0;
  /** Versions made ready from streamed weights, and from the store. */
  readonly loadedFrom = { stream: 0, store: 0 };

  constructor(private readonly opts: PolicyManagerOptions) {}

  get current(): ServedPolicy | undefined {
    return this.served;
  }

  /**
   * How every model this manager makes is made: frozen, since the generator only samples (backward
   * refused; under TEMPER_GENERATOR_PRECISION=bf16 the projections are made and loaded without
   * fp32 masters, new weights written through into their bf16 copies).
   */
  private engineOptions(): EngineOptions {
    return { threads: this.opts.threads, precision: this.opts.precision, frozen: true, ...(this.opts.batchInvariant ? { batchInvariant: true } : {}) };
  }

  /** Whether a sequence's samples here are the same whatever else is in its batch. */
  get batchInvariant(): boolean {
    return this.opts.batchInvariant === true;
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
    const deadline = performance.now() + ENSURE_WAIT_MS;
    let latest: Announced | undefined;
    for (;;) {
      const s = this.streamed;
      if (s && s.runId === runId && s.version >= minVersion) await s.staged;
      if (ok(this.staged)) {
        const now = await this.use(async (p) => p);
        if (ok(now)) return now;
      }
      latest = await this.latestAnnounced(runId);
      if (latest && latest.version >= minVersion) break;
      if (minVersion === 0 && !latest && this.served) return this.served;
      // Not here yet: its weights or its commit are usually a few milliseconds away.
      const left = deadline - performance.now();
      if (left <= 0 || this.closed) return undefined;
      this.follow(runId);
      await this.changed(left);
    }
    const p = await this.ready(runId, latest);
    const served = await this.use(async () => {
      // Another caller may have moved on to something newer of this run meanwhile.
      if (!(this.served?.runId === runId && this.served.version >= p.version)) this.swapIn(p);
      return this.served!;
    });
    this.follow(runId);
    return served;
  }

  /**
   * Whether `minVersion` of `runId` is newer than anything this generator has heard of: the
   * run is the one followed (its streamed weights and its commits come here as they are made)
   * and no such version is served, staged, being staged or announced. A request for it waits
   * for that version here rather than going back to the queue: a learner asks for its next
   * step's rollouts while it is still training the policy that will sample them.
   */
  isAhead(runId: string, minVersion: number): boolean {
    const f = this.following;
    if (!f || f.runId !== runId) return false;
    const streaming = this.streamed?.runId === runId ? this.streamed.version : -1;
    return minVersion > Math.max(this.newestOf(runId), streaming, f.announced);
  }

  /** Resolves when a version may have become available (weights staged, a commit seen), or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
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
    this.wake();
    await this.following?.stop();
    this.following = undefined;
    await this.queue;
  }

  private swapIn(p: ServedPolicy): void {
    const before = this.served;
    this.served = p;
    if (this.staged === p) this.staged = undefined;
    // Nothing samples with a policy once it is swapped out (all sampling goes through use()).
    if (before && before.model !== p.model) this.spare ??= { model: before.model, base: before.base };
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
        const { manifest, bytes } = await pullPolicyDir(this.opts.store, ref, dir);
        const tokenizer = loadModelTokenizer(dir);
        const model = await Model.load(dir, this.engineOptions());
        const adapterBase = manifest.labels[ADAPTER_BASE_LABEL] ?? '';
        const hasAdapters = fs.existsSync(path.join(dir, ADAPTER_DIR, 'adapter_config.json'));
        if (hasAdapters) await model.loadAdapters(path.join(dir, ADAPTER_DIR));
        const shape = engineConfig(model.config);
        if (tokenizer.vocabSize > shape.vocabSize) {
          throw new Error(`checkpoint ${manifest.id}: its tokenizer has ${tokenizer.vocabSize} ids but the model only ${shape.vocabSize}`);
        }
        this.opts.log.info('loaded checkpoint', { checkpoint: manifest.id, run: manifest.runId, step: manifest.step, bytes, seconds: (Date.now() - started) / 1000 });
        return { model, tokenizer, manifest, runId: manifest.runId, base: hasAdapters ? adapterBase || manifest.id : '', ...describe(model, manifest) };
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    })();
    this.loads.set(ref, work);
    const done = () => this.loads.delete(ref);
    work.then(done, done);
    return work;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Watches the run's policy announcements and loads each new version ahead of need. */
  private follow(runId: string): void {
    if (this.opts.prefetch === false || this.closed || !runId || this.following?.runId === runId) return;
    const previous = this.following;
    let messages: ConsumerMessages | undefined;
    let stopped = false;
    const weights = subscribeWeights(this.opts.bus.nc, runId, (w) => this.prepare(runId, w));
    this.makeSpare();
    const f = {
      runId,
      /** The highest version a commit of the run has announced so far. */
      announced: 0,
      stop: async () => {
        stopped = true;
        await weights.stop();
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
          if (c.manifest && c.policyVersion > 0) {
            f.announced = Math.max(f.announced, c.policyVersion);
            await this.prefetch(runId, { manifest: c.manifest, version: c.policyVersion });
          }
          this.wake();
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
    if (await this.attachCommit(runId, a)) return;
    if (a.version <= this.newestOf(runId) || this.served?.runId !== runId) return;
    try {
      const p = await this.ready(runId, a);
      if (p.version > this.newestOf(runId) && this.served?.runId === runId && this.following?.runId === runId) {
        this.staged = p;
        this.opts.log.info('policy loaded ahead', { run: runId, policy_version: p.version, checkpoint: p.manifest.id });
      }
    } catch (err) {
      this.opts.log.warn('could not load an announced policy ahead of need', { run: runId, policy_version: a.version, checkpoint: a.manifest.id, err });
    }
  }

  /**
   * An announced version, ready to serve: the one staged from its streamed weights when the
   * checkpoint holds those, else pulled from the store. Made once however many callers ask at a time.
   */
  private ready(runId: string, a: Announced): Promise<ServedPolicy> {
    const key = `${runId}\u0000${a.version}\u0000${a.manifest.id}`;
    const existing = this.readying.get(key);
    if (existing) return existing;
    const work = (async (): Promise<ServedPolicy> => {
      const attached = await this.attachCommit(runId, a);
      if (attached) return attached;
      const p = { ...(await this.load(a.manifest.id)), version: a.version };
      this.loadedFrom.store++;
      return p;
    })();
    this.readying.set(key, work);
    const done = () => this.readying.delete(key);
    work.then(done, done);
    return work;
  }

  /**
   * Streamed weights of `runId`: loaded into a spare model and staged as their version, once
   * it is known to be published, when they are newer than what is served and fit its model.
   */
  private prepare(runId: string, w: StreamedWeights): void {
    const served = this.served;
    if (!served || served.runId !== runId || w.version <= this.newestOf(runId)) return;
    // Adapters fit only a model with adapters on the same base: without, the store will have them.
    const adapters = w.kind === 'adapters';
    if (adapters && !served.model.hasAdapters) return;
    const base = adapters ? served.base : '';
    const staged = (async (): Promise<ServedPolicy | undefined> => {
      const published = this.publishedVersion(runId);
      const model = this.takeSpare(served.model.config, base) ?? (adapters ? await copyBase(served.model, this.engineOptions()) : await Model.create(served.model.config, this.engineOptions()));
      try {
        if (adapters) await model.importAdapters(w.bytes);
        else await model.importWeights(w.bytes);
      } catch (err) {
        this.opts.log.warn('streamed weights could not be loaded; the checkpoint store will have them', { run: runId, policy_version: w.version, err });
        this.spare ??= { model, base };
        return undefined;
      }
      const now = this.served;
      if ((await published) < w.version || !now || now.runId !== runId || w.version <= this.newestOf(runId) || !sameConfig(now.model.config, model.config) || now.base !== base) {
        this.spare ??= { model, base };
        return undefined;
      }
      const p: ServedPolicy = { model, tokenizer: now.tokenizer, manifest: uncommittedManifest(now, w.sha256, adapters), runId, version: w.version, base, ...describe(model, now.manifest) };
      const before = this.staged;
      if (before && before.model !== now.model) this.spare ??= { model: before.model, base: before.base };
      this.staged = p;
      this.loadedFrom.stream++;
      this.opts.log.info('policy streamed ahead', { run: runId, policy_version: w.version, weights_sha256: w.sha256, kind: w.kind, bytes: w.bytes.length });
      return p;
    })().catch((err: unknown) => {
      this.opts.log.warn('could not stage streamed weights', { run: runId, policy_version: w.version, err });
      return undefined;
    });
    this.streamed = { runId, version: w.version, staged };
    void staged.then(() => this.wake());
  }

  /** The highest version the run's learner has published (0 when none or when NATS cannot say). */
  private async publishedVersion(runId: string): Promise<number> {
    return (await lastEvent(this.opts.bus.jsm, subjects.policyPublished(runId), PolicyPublished))?.policyVersion ?? 0;
  }

  /**
   * The committed checkpoint of a version served or staged from streamed weights, attached
   * to it when it holds those weights; else pulled from the store and put in their place.
   * Undefined when no such version is served or staged (weights still being staged are waited for).
   */
  private async attachCommit(runId: string, a: Announced): Promise<ServedPolicy | undefined> {
    const s = this.streamed;
    if (s && s.runId === runId && s.version === a.version) await s.staged;
    const p = [this.served, this.staged].find((x) => x?.runId === runId && x.version === a.version && (x.manifest.id === '' || x.manifest.id === a.manifest.id));
    if (!p) return undefined;
    if (p.manifest.id === a.manifest.id) return p;
    if (p.base ? sameButAdapters(p, a.manifest) : sameButWeights(p.manifest, a.manifest, weightsSha256(p.manifest))) {
      Object.assign(p, { manifest: a.manifest }, describe(p.model, a.manifest));
      this.opts.log.info('streamed policy committed', { run: runId, policy_version: a.version, checkpoint: a.manifest.id, step: a.manifest.step });
      return p;
    }
    // Other weights, or other files beside them (a first checkpoint written by another tool).
    this.opts.log.warn('the checkpoint of a streamed version is not what was streamed; serving it from the store', { run: runId, policy_version: a.version, checkpoint: a.manifest.id });
    const loaded = { ...(await this.load(a.manifest.id)), version: a.version };
    this.loadedFrom.store++;
    // A staged policy is used by nothing yet; a served one is swapped like any other.
    if (this.staged === p) this.staged = loaded;
    else
      await this.use(async () => {
        if (this.served === p) this.swapIn(loaded);
        else if (this.staged === p) this.staged = loaded;
      });
    return loaded;
  }

  /**
   * Makes a spare model of the served shape in the background, so the first streamed version
   * does not wait for one (making a model means initialising all of its weights).
   */
  private makeSpare(): void {
    const config = this.served?.model.config;
    if (this.spare || !config) return;
    Model.create(config, this.engineOptions()).then(
      (m) => (this.spare ??= { model: m, base: '' }),
      (err: unknown) => this.opts.log.warn('could not make a spare model for streamed weights', { err }),
    );
  }

  /** The spare model when it has this config and base ('': no adapters). */
  private takeSpare(config: HfConfig, base: string): Model | undefined {
    const s = this.spare;
    if (!s || s.base !== base || !sameConfig(s.model.config, config)) return undefined;
    this.spare = undefined;
    return s.model;
  }
}

/**
 * Whether `next` is `served` with other weights, these ones: its weights file hashes to
 * `weightsSha256` and every other file the generator reads is the same.
 */
function sameButWeights(served: CheckpointManifest, next: CheckpointManifest, weightsSha256: string): boolean {
  const read = (m: CheckpointManifest) => new Map(m.files.filter((f) => !LEARNER_STATE_FILES.has(f.path)).map((f) => [f.path, f.sha256]));
  const before = read(served);
  const after = read(next);
  if (after.get(WEIGHTS_FILE) !== weightsSha256 || !before.has(WEIGHTS_FILE) || before.size !== after.size) return false;
  for (const [file, sha] of after) if (file !== WEIGHTS_FILE && before.get(file) !== sha) return false;
  return true;
}

/** Whether `next` holds the adapters `p` serves (streamed, their sha256 in p's manifest) over p's base. */
function sameButAdapters(p: ServedPolicy, next: CheckpointManifest): boolean {
  return next.labels[ADAPTER_BASE_LABEL] === p.base && weightsSha256(next) === weightsSha256(p.manifest);
}

/**
 * What a streamed version's checkpoint will hold, until it is committed (no id yet): the served
 * one's files with the weights file replaced, or for adapters, the adapters over the served
 * policy's base.
 */
function uncommittedManifest(served: ServedPolicy, weightsSha256: string, adapters: boolean): CheckpointManifest {
  const m = served.manifest;
  const weights = /\.safetensors$/;
  const files = m.files.filter((f) => !weights.test(f.path) && !LEARNER_STATE_FILES.has(f.path));
  const labels = adapters ? { ...m.labels, [ADAPTER_BASE_LABEL]: served.base } : m.labels;
  return { ...m, id: '', parentId: m.id, createdAt: undefined, labels, files: [...files, { path: adapters ? ADAPTER_WEIGHTS_FILE : WEIGHTS_FILE, size: 0, sha256: weightsSha256 }] };
}

/** The sha256 of what a checkpoint streams as its weights: the adapters' file for adapters alone. */
function weightsSha256(m: CheckpointManifest): string {
  const file = m.labels[ADAPTER_BASE_LABEL] ? ADAPTER_WEIGHTS_FILE : WEIGHTS_FILE;
  return m.files.find((f) => f.path === file)?.sha256 ?? '';
}

/** A model with `served`'s base and adapters (their values to be replaced): a spare for adapters. */
async function copyBase(served: Model, engine: EngineOptions): Promise<Model> {
  const model = await Model.create(served.config, engine);
  await model.importWeights(await served.exportWeights({ merged: false }));
  await model.addAdapters(served.adapterSpec!);
  return model;
}

function sameConfig(a: HfConfig, b: HfConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The limits and summary of a loaded model as the checkpoint describes it. */
function describe(model: Model, manifest: CheckpointManifest): Pick<ServedPolicy, 'limits' | 'summary'> {
  const shape = engineConfig(model.config);
  const summary = ModelSummary.fromPartial({
    modelType: model.config.model_type,
    vocabSize: shape.vocabSize,
    hiddenSize: shape.hiddenSize,
    numLayers: shape.numLayers,
    dtype: typeof model.config.torch_dtype === 'string' ? model.config.torch_dtype : '',
    ...withoutDefaults(manifest.model),
  });
  return { limits: { vocabSize: shape.vocabSize, maxPositions: shape.maxPositions }, summary };
}

/** The fields of a summary that are set (so a manifest without one does not blank what the config says). */
function withoutDefaults(m: ModelSummary | undefined): Partial<ModelSummary> {
  if (!m) return {};
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== '' && v !== 0)) as Partial<ModelSummary>;
}
