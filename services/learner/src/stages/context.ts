// What every stage runner is handed: the run, the services it talks to, and where to report.
import type { Tracer } from '@opentelemetry/api';
import type { Bus } from '@temper/bus';
import type { CheckpointClient } from '@temper/checkpoint-store';
import type { RunSpec, StageSpec } from '@temper/proto';
import type { Logger } from '@temper/service';

export interface StageContext {
  runId: string;
  spec: RunSpec;
  stage: StageSpec;
  /** Checkpoint id the stage starts from; undefined: a model created from spec.model.config. */
  input?: string;
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
  emitMetrics(step: number, totalSteps: number, values: Record<string, number>): Promise<void>;
  emitCheckpoint(id: string): Promise<void>;
}

export interface StageResult {
  /** The stage's final checkpoint: the next stage's input. */
  checkpointId: string;
}
