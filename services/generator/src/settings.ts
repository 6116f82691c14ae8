// The generator's settings from the environment; a bad value stops the start with the
// variable named.
import * as os from 'node:os';

export interface GeneratorSettings {
  /** Checkpoint (id, id prefix or tag) to serve from the start; empty: none until needed. */
  checkpoint: string;
  /** The policy version to serve it as (0: what its run announced for it). */
  policyVersion: number;
  /** Engine threads: TEMPER_GENERATOR_THREADS, else TEMPER_ENGINE_THREADS (shared with the learner), else all cores. */
  threads?: number;
  /**
   * What the engine's products read: TEMPER_GENERATOR_PRECISION, 'fp32' (default on the CPU) or
   * 'bf16' (bf16 copies of the weights: half the bytes a decode step reads; log-probs then differ
   * from an fp32 learner's by the weights' rounding, which the mismatch metrics show).
   */
  precision?: 'fp32' | 'bf16';
  /**
   * TEMPER_GENERATOR_BATCH_INVARIANT=1: models in the engine's batch-invariant mode (CPU, fp32),
   * where a sequence's tokens and log-probs do not depend on the rest of its batch; reproducible
   * groups then share batches (each with its own seed) instead of being sampled alone.
   */
  batchInvariant: boolean;
  generatorId: string;
  ackWaitMs: number;
  maxBatchGroups: number;
  maxBatchSequences: number;
  lingerMs: number;
  /** How long a request for a version still to come is held waiting for it. */
  aheadWaitMs: number;
  /** Durable consumer name on TEMPER_ROLLOUT_REQUESTS. */
  consumer: string;
  /** Only requests on this subject (a work queue allows one consumer per subject; tests use it). */
  filterSubject?: string;
  /**
   * Deliveries of one request before it is parked on the dead-letter subject:
   * TEMPER_GENERATOR_MAX_DELIVERIES (default 100; a request waiting for its policy is handed
   * back about once a second, so this also bounds that wait when the policy never comes).
   */
  maxDeliveries: number;
}

export function generatorSettings(env: NodeJS.ProcessEnv = process.env): GeneratorSettings {
  return {
    checkpoint: env.TEMPER_GENERATOR_CHECKPOINT ?? '',
    policyVersion: int(env, 'TEMPER_GENERATOR_POLICY_VERSION', 0, 0),
    threads: env.TEMPER_GENERATOR_THREADS
      ? int(env, 'TEMPER_GENERATOR_THREADS', 1, 1)
      : env.TEMPER_ENGINE_THREADS
        ? int(env, 'TEMPER_ENGINE_THREADS', 1, 1)
        : undefined,
    precision: precision(env, 'TEMPER_GENERATOR_PRECISION'),
    batchInvariant: batchInvariant(env),
    generatorId: env.TEMPER_GENERATOR_ID || `${os.hostname()}-${process.pid}`,
    ackWaitMs: Math.round(num(env, 'TEMPER_GENERATOR_ACK_WAIT_S', 60, 0.5) * 1000),
    maxBatchGroups: int(env, 'TEMPER_GENERATOR_MAX_BATCH_GROUPS', 16, 1),
    maxBatchSequences: int(env, 'TEMPER_GENERATOR_MAX_BATCH_SEQUENCES', 256, 1),
    lingerMs: num(env, 'TEMPER_GENERATOR_LINGER_MS', 5, 0),
    aheadWaitMs: Math.round(num(env, 'TEMPER_GENERATOR_AHEAD_WAIT_S', 600, 0) * 1000),
    consumer: env.TEMPER_GENERATOR_CONSUMER || 'generators',
    filterSubject: env.TEMPER_GENERATOR_FILTER || undefined,
    maxDeliveries: int(env, 'TEMPER_GENERATOR_MAX_DELIVERIES', 100, 1),
  };
}

function batchInvariant(env: NodeJS.ProcessEnv): boolean {
  const raw = env.TEMPER_GENERATOR_BATCH_INVARIANT ?? '';
  if (!['', '0', '1', 'false', 'true'].includes(raw)) throw new Error(`TEMPER_GENERATOR_BATCH_INVARIANT must be 1 or 0 (got ${JSON.stringify(raw)})`);
  const on = raw === '1' || raw === 'true';
  if (on && env.TEMPER_GENERATOR_PRECISION === 'bf16') throw new Error('TEMPER_GENERATOR_BATCH_INVARIANT takes fp32 weights: unset TEMPER_GENERATOR_PRECISION=bf16');
  return on;
}

function precision(env: NodeJS.ProcessEnv, name: string): 'fp32' | 'bf16' | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw !== 'fp32' && raw !== 'bf16') throw new Error(`${name} must be "fp32" or "bf16" (got ${JSON.stringify(raw)})`);
  return raw;
}

function num(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number >= ${min} (got ${JSON.stringify(raw)})`);
  return v;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const v = num(env, name, fallback, min);
  if (!Number.isInteger(v)) throw new Error(`${name} must be an integer (got ${JSON.stringify(env[name])})`);
  return v;
}
