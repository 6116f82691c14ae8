// What every stage runner is handed: the run, the services it talks to, and where to report.
import type { Tracer } from '@opentelemetry/api';
import type { Bus } from '@temper/bus';
import type { CheckpointClient } from '@temper/checkpoint-client';
import type { RunSpec, StageSpec } from '@temper/proto';
import type { Logger } from '@temper/service';

export interface StageContext {
  /** The run's id; after a mid-training fork "<run>-<branch>" (see runs/manager.ts). */
  runId: string;
  spec: RunSpec;
  /**
   * The stage's spec. After a mid-training fork a stage runs once per branch, and then its
   * name here is "<stage>.<branch>", so checkpoints and resumption stay apart per branch;
   * metrics still carry the stage's own name and the branch.
   */
  stage: StageSpec;
  /** The branch of a mid-training fork this stage runs on; '' before (or without) a fork. */
  branch: string;
  /** Checkpoint id the stage starts from; undefined: a model created from spec.model.config. */
  input?: string;
  /** Name of the stage that produced `input` (undefined when it is the run's model). */
  inputStage?: string;
  bus: Bus;
  store: CheckpointClient;
  log: Logger;
  tracer: Tracer;
  /** Engine threads. */
  threads: number;
  /** Aborted when the run is cancelled or the learner stops. */
  signal: AbortSignal;
  /** How long to wait for the scored groups of one step. */
  rolloutTimeoutMs: number;
  /** Per-step metrics; with kind 'eval', an evaluation (of `stage`'s checkpoint, default this stage). */
  emitMetrics(step: number, totalSteps: number, values: Record<string, number>, options?: MetricsOptions): Promise<void>;
  emitCheckpoint(id: string): Promise<void>;
}

export interface MetricsOptions {
  kind?: 'eval';
  /** The stage the values are about (an eval stage reports on the stage it evaluated). */
  stage?: string;
  /** The branch they are about (mid-training reports each decay branch's steps under its name). */
  branch?: string;
}

export interface StageResult {
  /** The stage's final checkpoint: the next stage's input. */
  checkpointId: string;
  /**
   * A fork (mid-training's decay branches): the stages after this one run once per branch,
   * each from its branch's checkpoint. checkpointId is then the checkpoint forked from.
   */
  branches?: { name: string; checkpointId: string }[];
}
