// Models in and out of the checkpoint store. A learner checkpoint is a Hugging Face model
// directory plus two small files of ours: the tokenizer spec (so a generator can decode what
// it samples; a Hugging Face tokenizer's files come along, see tokenizer-files.ts) and, for
// checkpoints a run can resume from, the run state with the optimizer. A model with adapters
// keeps them beside its base as a PEFT directory; a policy version of a stage that trains
// adapters holds them alone and names the checkpoint that holds its base (ADAPTER_BASE_LABEL).
import { Bus, lastEvent, publishMessage, publishWeights, subjects } from '@temper/bus';
import { CheckpointClient, ManifestFields, pullPolicyDir } from '@temper/checkpoint-client';
import { Model } from '@temper/native';
import { CheckpointCommitted, CheckpointManifest, PolicyPublished } from '@temper/proto';
import { ADAPTER_BASE_LABEL, ADAPTER_DIR, ADAPTER_WEIGHTS_FILE, OPTIMIZER_FILE, RUN_STATE_FILE, WEIGHTS_FILE } from '@temper/service';
import { createHash } from 'node:crypto';
import type { TokenizerSpec } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTokenizer, writeTokenizer } from './tokenizer-files';


/** Where a stage stood when it saved: enough to continue it exactly. */
export interface RunState {
  runId: string;
  stage: string;
  step: number;
  policyVersion: number;
  /** Position in the stage's prompt / data stream. */
  dataCursor: number;
  /** How many times the stage has been resumed (request ids use it). */
  attempt: number;
  tokensSeen: number;
}

export interface SaveOptions {
  tokenizer: TokenizerSpec;
  manifest: ManifestFields;
  /** With the optimizer state and run state, so a run resumes from it. */
  runState?: RunState;
  /** Announce it as this policy version (generators pick it up). */
  policyVersion?: number;
  /** The model's weights as exported a moment ago: written as they are, and not hashed again. */
  weights?: Weights;
  /** Write the adapters alone, over the base weights of this checkpoint (its id). */
  adapterBase?: string;
}

/**
 * What moves to the generators for a new policy version, in safetensors form with its sha256:
 * all the weights (exportWeights), or the adapters alone when only they train (exportAdapters).
 */
export interface Weights {
  bytes: Uint8Array;
  sha256: string;
  kind: 'model' | 'adapters';
}

export async function exportWeights(model: Model): Promise<Weights> {
  const adapters = model.hasAdapters;
  const bytes = adapters ? await model.exportAdapters() : await model.exportWeights();
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), kind: adapters ? 'adapters' : 'model' };
}

export async function saveCheckpoint(store: CheckpointClient, model: Model, opts: SaveOptions): Promise<CheckpointManifest> {
  const written = await writeCheckpoint(model, opts);
  try {
    return await written.push(store);
  } finally {
    written.discard();
  }
}

/**
 * Tries of a checkpoint upload while the store cannot be reached. A store that restarts (a
 * crash, a rescheduled pod) is away for seconds to tens of seconds, and the upload runs behind
 * the steps, so it waits that out: 40 tries at most 2 s apart are about 75 s. (With the
 * client's default of 5, about 3 s, a killed store failed the run.)
 */
export const UPLOAD_RETRIES = 40;

/** A checkpoint written to a local folder, to push when the caller likes. */
export interface WrittenCheckpoint {
  /** Pushes it to the store, with `more` manifest fields known only by then (its parent). */
  push(store: CheckpointClient, more?: ManifestFields): Promise<CheckpointManifest>;
  /** Removes the local copy (pushed or not). */
  discard(): void;
}

/**
 * Writes the model as it is now: the write is queued on the model as this is called, ahead of
 * any later call such as the next training step.
 */
export async function writeCheckpoint(model: Model, opts: SaveOptions): Promise<WrittenCheckpoint> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-learner-save-'));
  if (opts.weights && opts.weights.kind !== (opts.adapterBase ? 'adapters' : 'model')) throw new Error(`writeCheckpoint: ${opts.weights.kind} weights for a checkpoint of ${opts.adapterBase ? 'adapters' : 'a model'}`);
  try {
    // Every write to the model is queued before the first is awaited: ahead of the next step.
    const optimizer = opts.runState !== undefined;
    const writes: Promise<void>[] = [];
    if (opts.adapterBase) {
      writes.push(model.saveAdapters(path.join(dir, ADAPTER_DIR), { baseModel: opts.adapterBase }));
      if (optimizer) writes.push(model.saveOptimizer(dir));
    } else {
      writes.push(model.save(dir, { optimizer, weights: opts.weights?.bytes }));
      if (model.hasAdapters) writes.push(model.saveAdapters(path.join(dir, ADAPTER_DIR)));
    }
    await Promise.all(writes);
    writeTokenizer(dir, opts.tokenizer);
    if (opts.runState) fs.writeFileSync(path.join(dir, RUN_STATE_FILE), JSON.stringify(opts.runState));
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const manifest = opts.adapterBase ? { ...opts.manifest, labels: { ...opts.manifest.labels, [ADAPTER_BASE_LABEL]: opts.adapterBase } } : opts.manifest;
  return {
    push: async (store, more = {}) => {
      const knownSha256 = opts.weights ? { [opts.adapterBase ? ADAPTER_WEIGHTS_FILE : WEIGHTS_FILE]: opts.weights.sha256 } : undefined;
      const pushed = await store.pushDir(dir, { ...manifest, ...more }, { policyVersion: opts.policyVersion, knownSha256, retries: UPLOAD_RETRIES });
      return pushed.manifest;
    },
    discard: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Publishes policy `version` of the run as these weights, then sends them straight to the
 * run's generators, ahead of the checkpoint that will commit them: they serve them from their
 * next batch on. The publication is durable (JetStream) and comes first, so a version number
 * is never reused for other weights, even by a learner that resumes after this one died
 * before committing.
 */
export async function streamWeights(bus: Bus, runId: string, version: number, w: Weights): Promise<void> {
  await publishMessage(bus.js, subjects.policyPublished(runId), PolicyPublished, { runId, policyVersion: version, weightsSha256: w.sha256 }, { msgId: `policy-published-${runId}-v${version}` });
  await publishWeights(bus.nc, runId, version, w.bytes, w.sha256, w.kind);
}

export interface Loaded {
  model: Model;
  manifest: CheckpointManifest;
  tokenizer?: TokenizerSpec;
  runState?: RunState;
}

export interface LoadOptions {
  threads?: number;
  optimizer?: boolean;
  /**
   * Keep the checkpoint's adapters as adapters (a GRPO stage that trains them goes on with
   * them); by default they are merged into the base, the policy they make.
   */
  keepAdapters?: boolean;
  /** The engine's precision for the base weights ('bf16': a frozen base under adapters held in bf16). */
  precision?: 'fp32' | 'bf16';
}

export async function loadCheckpoint(store: CheckpointClient, ref: string, opts: LoadOptions = {}): Promise<Loaded> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-learner-load-'));
  try {
    const { manifest } = await pullPolicyDir(store, ref, dir);
    const hasOptimizer = opts.optimizer && fs.existsSync(path.join(dir, OPTIMIZER_FILE));
    const hasAdapters = fs.existsSync(path.join(dir, ADAPTER_DIR, 'adapter_config.json'));
    const model = await Model.load(dir, { threads: opts.threads, optimizer: hasOptimizer && !hasAdapters, precision: opts.precision });
    if (hasAdapters) {
      await model.loadAdapters(path.join(dir, ADAPTER_DIR));
      // The optimizer state of a model with adapters is the adapters'.
      if (hasOptimizer) await model.loadOptimizer(dir);
      // An SFT stage that kept its adapters stored them beside the base weights: the policy it
      // made is both, so a stage that trains on from it starts from them merged.
      if (!opts.keepAdapters) await model.mergeAdapters();
    }
    return {
      model,
      manifest,
      tokenizer: readTokenizer(dir),
      runState: readJson<RunState>(path.join(dir, RUN_STATE_FILE)),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The newest checkpoint of a run's stage that carries run state (one it can resume from). */
export async function latestResumable(store: CheckpointClient, runId: string, stage: string): Promise<CheckpointManifest | undefined> {
  const { checkpoints } = await store.list({ runId, stage });
  return checkpoints
    .filter((c) => c.files.some((f) => f.path === RUN_STATE_FILE))
    .sort((a, b) => b.step - a.step)[0];
}

/** The highest policy version given out for a run so far, committed or only published (0 when none). */
export async function latestPolicyVersion(bus: Bus, runId: string): Promise<number> {
  const [committed, published] = await Promise.all([
    lastEvent(bus.jsm, subjects.checkpointCommitted(runId), CheckpointCommitted),
    lastEvent(bus.jsm, subjects.policyPublished(runId), PolicyPublished),
  ]);
  return Math.max(committed?.policyVersion ?? 0, published?.policyVersion ?? 0);
}

function readJson<T>(file: string): T | undefined {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : undefined;
}
