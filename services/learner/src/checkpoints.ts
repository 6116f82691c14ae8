// Models in and out of the checkpoint store. A learner checkpoint is a Hugging Face model
// directory plus two small files of ours: the tokenizer spec (so a generator can decode what
// it samples) and, for checkpoints a run can resume from, the run state with the optimizer.
import { Bus, publishWeights, streams, subjects } from '@temper/bus';
import { CheckpointClient, ManifestFields } from '@temper/checkpoint-store';
import { Model } from '@temper/native';
import { CheckpointCommitted, CheckpointManifest } from '@temper/proto';
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-learner-save-'));
  try {
    await model.save(dir, { optimizer: opts.runState !== undefined });
    fs.writeFileSync(path.join(dir, TOKENIZER_FILE), JSON.stringify(opts.tokenizer));
    if (opts.runState) fs.writeFileSync(path.join(dir, RUN_STATE_FILE), JSON.stringify(opts.runState));
    const { manifest } = await store.pushDir(dir, opts.manifest, { policyVersion: opts.policyVersion });
    return manifest;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Sends the weights of policy `version` straight to the generators of the run, ahead of the
 * checkpoint that will commit them (saveCheckpoint): they load them while it uploads, and
 * serve them once the store announces a checkpoint whose weights file has the same hash.
 * A model with adapters is not sent: its checkpoint holds the base weights alone.
 */
export async function streamWeights(bus: Bus, model: Model, runId: string, version: number): Promise<void> {
  if (model.hasAdapters) return;
  await publishWeights(bus.nc, runId, version, await model.exportWeights());
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

/** The highest policy version announced for a run so far (0 when none). */
export async function latestPolicyVersion(bus: Bus, runId: string): Promise<number> {
  const msg = await bus.jsm.streams.getMessage(streams.events.name, { last_by_subj: subjects.checkpointCommitted(runId) }).catch(() => undefined);
  return msg ? CheckpointCommitted.decode(msg.data).policyVersion : 0;
}

function readJson<T>(file: string): T | undefined {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : undefined;
}
