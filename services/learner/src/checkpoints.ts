// Models in and out of the checkpoint store. A learner checkpoint is a Hugging Face model
// directory plus two small files of ours: the tokenizer spec (so a generator can decode what
// it samples) and, for checkpoints a run can resume from, the run state with the optimizer.
import { Bus, publishMessage, publishWeights, streams, subjects } from '@temper/bus';
import { CheckpointClient, ManifestFields } from '@temper/checkpoint-store';
import { Model } from '@temper/native';
import { CheckpointCommitted, CheckpointManifest, PolicyPublished } from '@temper/proto';
import { createHash } from 'node:crypto';
import type { TokenizerSpec } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const TOKENIZER_FILE = 'temper-tokenizer.json';
export const RUN_STATE_FILE = 'temper-run-state.json';

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
}

export async function saveCheckpoint(store: CheckpointClient, model: Model, opts: SaveOptions): Promise<CheckpointManifest> {
  return (await writeCheckpoint(model, opts))(store);
}

/**
 * Writes the model as it is now (the write is queued on the model as this is called, ahead of
 * any later call such as the next training step) and gives the upload to run when the caller
 * likes: the returned function pushes the checkpoint to the store, with `more` manifest fields
 * known only by then (its parent), and removes the local copy.
 */
export async function writeCheckpoint(model: Model, opts: SaveOptions): Promise<(store: CheckpointClient, more?: ManifestFields) => Promise<CheckpointManifest>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-learner-save-'));
  try {
    await model.save(dir, { optimizer: opts.runState !== undefined });
    fs.writeFileSync(path.join(dir, TOKENIZER_FILE), JSON.stringify(opts.tokenizer));
    if (opts.runState) fs.writeFileSync(path.join(dir, RUN_STATE_FILE), JSON.stringify(opts.runState));
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return async (store, more = {}) => {
    try {
      const { manifest } = await store.pushDir(dir, { ...opts.manifest, ...more }, { policyVersion: opts.policyVersion });
      return manifest;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

/**
 * Publishes policy `version` of the run as the model's weights now, then sends those weights
 * straight to the run's generators, ahead of the checkpoint that will commit them: they serve
 * them from their next batch on. The publication is durable (JetStream) and comes first, so
 * a version number is never reused for other weights, even by a learner that resumes after
 * this one died before committing. False when nothing was sent (a model with adapters: its
 * checkpoint holds the base weights alone, so generators must wait for the commit).
 */
export async function streamWeights(bus: Bus, model: Model, runId: string, version: number): Promise<boolean> {
  if (model.hasAdapters) return false;
  const bytes = await model.exportWeights();
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await publishMessage(bus.js, subjects.policyPublished(runId), PolicyPublished, { runId, policyVersion: version, weightsSha256: sha256 }, { msgId: `policy-published-${runId}-v${version}` });
  await publishWeights(bus.nc, runId, version, bytes, sha256);
  return true;
}

export interface Loaded {
  model: Model;
  manifest: CheckpointManifest;
  tokenizer?: TokenizerSpec;
  runState?: RunState;
}

export async function loadCheckpoint(store: CheckpointClient, ref: string, opts: { threads?: number; optimizer?: boolean } = {}): Promise<Loaded> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-learner-load-'));
  try {
    const { manifest } = await store.pullDir(ref, dir);
    const hasOptimizer = fs.existsSync(path.join(dir, 'optimizer.safetensors'));
    const model = await Model.load(dir, { threads: opts.threads, optimizer: opts.optimizer && hasOptimizer });
    return {
      model,
      manifest,
      tokenizer: readJson<TokenizerSpec>(path.join(dir, TOKENIZER_FILE)),
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
  const last = (subject: string) => bus.jsm.streams.getMessage(streams.events.name, { last_by_subj: subject }).catch(() => undefined);
  const [committed, published] = await Promise.all([last(subjects.checkpointCommitted(runId)), last(subjects.policyPublished(runId))]);
  return Math.max(committed ? CheckpointCommitted.decode(committed.data).policyVersion : 0, published ? PolicyPublished.decode(published.data).policyVersion : 0);
}

function readJson<T>(file: string): T | undefined {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : undefined;
}
