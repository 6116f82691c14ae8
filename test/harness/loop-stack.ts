// The services' stack as the GRPO loop tests use it: its own nats-server (so its work-queue
// consumers and runs never meet other tests'), an OTLP receiver for the services' spans, and a
// learner and a checkpoint-store client; plus following a run to its end.
import { CheckpointClient } from '@temper/checkpoint-client';
import { RunState } from '@temper/proto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LearnerClient } from '../../apps/cli/src/learner-client';
import { LocalStack, startLocalStack, type LocalStackOptions } from '../../apps/cli/src/local-stack';
import { OtlpReceiver, startOtlpReceiver } from './otlp-receiver';

export interface LoopStack {
  stack: LocalStack;
  receiver: OtlpReceiver;
  learner: LearnerClient;
  store: CheckpointClient;
  /** Closes the clients, stops the services and the receiver, and removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Logs under dir/logs, checkpoints under dir/checkpoints, spans to the receiver, one engine
 * thread per service; `env` and `serviceEnv` add to that.
 */
export async function startLoopStack(dir: string, env: Record<string, string> = {}, serviceEnv?: LocalStackOptions['serviceEnv']): Promise<LoopStack> {
  const receiver = await startOtlpReceiver();
  const stack = await startLocalStack({
    logs: { dir: path.join(dir, 'logs') },
    env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, TEMPER_ENGINE_THREADS: '1', ...env },
    serviceEnv,
  });
  const learner = new LearnerClient(stack.address('learner'), stack.clientAuth);
  const store = new CheckpointClient(stack.address('checkpoint-store'), stack.clientAuth);
  return {
    stack,
    receiver,
    learner,
    store,
    async stop() {
      learner.close();
      store.close();
      await stack.stop();
      await receiver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Followed {
  states: RunState[];
  steps: { step: number; values: Record<string, number> }[];
  final: RunState;
  error: string;
}

/** Watches a run to its end: every state it passed through, every step's figures, its last state and error. */
export async function follow(client: LearnerClient, runId: string, onStep?: (step: number) => void, onCheckpoint?: (id: string) => void): Promise<Followed> {
  const out: Followed = { states: [], steps: [], final: RunState.RUN_STATE_UNSPECIFIED, error: '' };
  for await (const e of client.watch(runId)) {
    if (e.event?.$case === 'status') {
      out.states.push(e.event.value.state);
      out.final = e.event.value.state;
      out.error = e.event.value.error;
    }
    if (e.event?.$case === 'metrics') {
      out.steps.push({ step: e.event.value.step, values: e.event.value.values });
      onStep?.(e.event.value.step);
    }
    if (e.event?.$case === 'checkpointId') onCheckpoint?.(e.event.value);
  }
  return out;
}
