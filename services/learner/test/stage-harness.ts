// Running a learner stage in a test: a real checkpoint store over loopback gRPC, the test
// harness's NATS, and a StageContext that records what the stage reports.
import { trace } from '@opentelemetry/api';
import { Bus, connectBus } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-client';
import { CheckpointStore, checkpointStoreBinding, FsBackend, widenFlowControl } from '@temper/checkpoint-store';
import { RunSpec, StageSpec } from '@temper/proto';
import { createLogger, startGrpcServer } from '@temper/service';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MetricsOptions, StageContext } from '../src/stages/context';
import { testNatsUrl } from '../../../test/harness/nats';

export interface RecordedMetrics {
  step: number;
  total: number;
  values: Record<string, number>;
  options: MetricsOptions;
}

export interface StageHarness {
  store: CheckpointClient;
  bus: Bus;
  context(spec: RunSpec, stage: StageSpec, opts?: { input?: string; inputStage?: string; branch?: string; runId?: string }): StageContext & { metrics: RecordedMetrics[]; checkpoints: string[] };
  stop(): Promise<void>;
}

export async function startStageHarness(): Promise<StageHarness> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-stage-test-'));
  const backend = await FsBackend.open(path.join(root, 'store'));
  const store = await CheckpointStore.open({ backend, stagingDir: path.join(root, 'store/uploads') });
  const server = await startGrpcServer({ address: '127.0.0.1:0', services: [checkpointStoreBinding(store)] });
  widenFlowControl(server.server);
  const client = new CheckpointClient(server.address);
  const bus = await connectBus(testNatsUrl(), 'learner-stage-test');
  const log = createLogger('learner-test');
  return {
    store: client,
    bus,
    context(spec, stage, opts = {}) {
      const metrics: RecordedMetrics[] = [];
      const checkpoints: string[] = [];
      return {
        runId: opts.runId ?? `stage-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
        spec,
        stage: opts.branch ? { ...stage, name: `${stage.name}.${opts.branch}` } : stage,
        branch: opts.branch ?? '',
        input: opts.input,
        inputStage: opts.inputStage,
        bus,
        store: client,
        log: { ...log, info: () => undefined, debug: () => undefined, child: () => ({ ...log, info: () => undefined, debug: () => undefined }) } as StageContext['log'],
        tracer: trace.getTracer('learner-test'),
        threads: 1,
        signal: new AbortController().signal,
        rolloutTimeoutMs: 10000,
        metrics,
        checkpoints,
        emitMetrics: async (step, total, values, options = {}) => {
          metrics.push({ step, total, values, options });
        },
        emitCheckpoint: async (id) => {
          checkpoints.push(id);
        },
      };
    },
    async stop() {
      client.close();
      await server.stop(1000);
      await store.close();
      await bus.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A tiny model config for tests (the byte tokenizer's vocabulary is filled in by the stage). */
export const tinyConfig = {
  model_type: 'qwen2' as const,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
};
