// The chaos run: one small GRPO spec run twice on a local stack with two generators and two
// scorers, first without faults, then under a seeded fault schedule (kills, pauses, NATS
// restarts), and the second run audited against the first. `npm run chaos` prints what this
// returns; test/chaos.test.ts runs a shorter schedule.
import { freePort, NatsServer, startNatsServer } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-client';
import { RunState } from '@temper/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient, stateName } from '../../learner-client';
import { startLocalStack } from '../../local-stack';
import { auditStore, auditTraining, trainedSteps } from './audit';
import { injectFaults, Injected, NatsControl } from './inject';
import { describeFault, faultSchedule, ScheduleOptions } from './schedule';

export interface ChaosOptions {
  seed: number;
  steps: number;
  faults: number;
  everyS: number;
  natsRestarts: number;
  pauses: number;
  /** The generators' and scorers' ack timeout; a paused process stays stopped 2 s past it. */
  ackWaitS: number;
  reproducible: boolean;
  /** Where the stack's logs, checkpoints and JetStream store go (default: a temporary directory, removed after). */
  dir?: string;
  /** Progress lines (the schedule, each fault as it happens). */
  log: (line: string) => void;
}

export const chaosDefaults: ChaosOptions = { seed: 1, steps: 300, faults: 14, everyS: 4, natsRestarts: 2, pauses: 2, ackWaitS: 4, reproducible: true, log: () => undefined };

const spec = (o: ChaosOptions) => `
name: chaos
seed: 7
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, tie_word_embeddings: true }
reward:
  components:
    - { name: accuracy, weight: 1, report_as: accuracy }
    # A random model is never right: this one varies within a group, so every step trains.
    - { name: repetition, weight: 1, options: { n: 1 } }
stages:
  - name: rl
    grpo:
      steps: ${o.steps}
      prompts_per_step: 4
      group_size: 4
      save_every: 5
      task: { uri: "builtin:arithmetic", fields: { difficulty: "1" } }
      sampling: { temperature: 1.0, max_new_tokens: 16 }
      optimizer: { lr: 0.003 }
${o.reproducible ? 'reproducible: true\n' : ''}`;

export interface ChaosReport {
  bench: 'chaos';
  seed: number;
  steps: number;
  schedule: string[];
  faults_scheduled: number;
  /** By kind: kill_<service>, pause_<service>, nats_restart. */
  faults_injected: Record<string, number>;
  completed: boolean;
  state: string;
  error: string;
  steps_redone: number;
  steps_missing: number;
  groups_lost: number;
  groups_duplicated: number;
  checkpoints: number;
  checkpoints_corrupt: number;
  checkpoints_missing_from_lineage: number;
  missing_steps: number[];
  wall_s: { fault_free: number; chaos: number; ratio: number };
  reproducible: boolean;
  final_weights_sha256: { fault_free: string; chaos: string };
  final_weights_equal: boolean;
  weights_changed: boolean;
  fault_free_completed: boolean;
  cpus: number;
  load_average: number;
  dir?: string;
}

export async function runChaos(opts: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o: ChaosOptions = { ...chaosDefaults, ...opts };
  const replicas = { 'checkpoint-store': 1, scorer: 2, generator: 2, learner: 1 };
  const scheduleOptions: ScheduleOptions = { seed: o.seed, count: o.faults, everyS: o.everyS, natsRestarts: o.natsRestarts, pauses: o.pauses, pauseS: o.ackWaitS + 2, replicas };
  const schedule = faultSchedule(scheduleOptions);
  o.log(`fault schedule (seed ${o.seed}):`);
  for (const f of schedule) o.log(`  ${describeFault(f)}`);

  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'temper-chaos-'));
  const nats = await restartableNats(path.join(dir, 'jetstream'));
  const stack = await startLocalStack({
    natsUrl: nats.current().url,
    logs: { dir: path.join(dir, 'logs') },
    env: {
      TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'),
      TEMPER_ENGINE_THREADS: '1',
      TEMPER_SCORER_THREADS: '1',
      TEMPER_GENERATOR_ACK_WAIT_S: String(o.ackWaitS),
      TEMPER_SCORER_ACK_WAIT_S: String(o.ackWaitS),
      TEMPER_ROLLOUT_TIMEOUT_S: '300',
    },
  }).catch(async (err) => {
    await nats.current().stop();
    throw err;
  });
  const learner = new LearnerClient(stack.address('learner'), stack.clientAuth);
  const store = new CheckpointClient(stack.address('checkpoint-store'), stack.clientAuth);
  try {
    await stack.start('generator');
    await stack.start('scorer');
    o.log('the run without faults...');
    const calm = await timedRun(learner, spec(o));
    o.log(`  ${stateName(calm.state)} in ${calm.wallS.toFixed(1)} s; the same run with faults...`);
    let injected: Injected[] = [];
    const chaos = await timedRun(learner, spec(o), async (ended) => {
      injected = await injectFaults(stack, nats, schedule, ended, (line) => o.log(`  ${line}`));
    });
    o.log(`  ${stateName(chaos.state)} in ${chaos.wallS.toFixed(1)} s; auditing...`);
    const learnerLog = path.join(dir, 'logs', 'learner.log');
    const training = auditTraining(trainedSteps(learnerLog, chaos.runId), trainedSteps(learnerLog, calm.runId), o.steps);
    const stored = await auditStore(store, chaos.runId, o.steps);
    const calmStored = await auditStore(store, calm.runId, o.steps, 'ends');
    return {
      bench: 'chaos',
      seed: o.seed,
      steps: o.steps,
      schedule: schedule.map(describeFault),
      faults_scheduled: schedule.length,
      faults_injected: byKind(injected),
      completed: chaos.state === RunState.RUN_STATE_SUCCEEDED,
      state: stateName(chaos.state),
      error: chaos.error,
      steps_redone: training.stepsRedone,
      steps_missing: training.stepsMissing,
      groups_lost: training.groupsLost,
      groups_duplicated: training.groupsDuplicated,
      checkpoints: stored.checkpoints,
      checkpoints_corrupt: stored.corrupt.length + calmStored.corrupt.length,
      checkpoints_missing_from_lineage: stored.missingFromLineage.length,
      missing_steps: stored.missingFromLineage,
      wall_s: { fault_free: calm.wallS, chaos: chaos.wallS, ratio: chaos.wallS / calm.wallS },
      reproducible: o.reproducible,
      final_weights_sha256: { fault_free: calmStored.finalWeightsSha256, chaos: stored.finalWeightsSha256 },
      final_weights_equal: calmStored.finalWeightsSha256 !== '' && calmStored.finalWeightsSha256 === stored.finalWeightsSha256,
      // Equal final weights mean something only if training moved them.
      weights_changed: stored.initialWeightsSha256 !== '' && stored.initialWeightsSha256 !== stored.finalWeightsSha256,
      fault_free_completed: calm.state === RunState.RUN_STATE_SUCCEEDED,
      cpus: os.cpus().length,
      load_average: os.loadavg()[0],
      dir: o.dir,
    };
  } finally {
    learner.close();
    store.close();
    await stack.stop();
    await nats.current().stop();
    if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A nats-server whose JetStream store and port outlive it, so it can be restarted in place. */
async function restartableNats(storeDir: string): Promise<NatsControl> {
  const port = await freePort();
  let server: NatsServer = await startNatsServer({ port, storeDir });
  return {
    current: () => server,
    restart: async (downS) => {
      await server.stop();
      await new Promise((r) => setTimeout(r, downS * 1000));
      server = await startNatsServer({ port, storeDir });
    },
  };
}

interface TimedRun {
  runId: string;
  state: RunState;
  error: string;
  wallS: number;
}

/** Submits the spec and waits for the run to end, asking the learner (whichever is up) every half second. */
async function timedRun(learner: LearnerClient, yaml: string, during?: (ended: Promise<unknown>) => Promise<void>): Promise<TimedRun> {
  const start = performance.now();
  const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: yaml } });
  const runId = run!.runId;
  const ended = (async () => {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const status = await learner.getRun(runId).then((r) => r.run, () => undefined); // the learner may be down
      if (status && [RunState.RUN_STATE_SUCCEEDED, RunState.RUN_STATE_FAILED, RunState.RUN_STATE_CANCELLED].includes(status.state)) {
        return { runId, state: status.state, error: status.error, wallS: (performance.now() - start) / 1000 };
      }
    }
  })();
  await Promise.all([ended, during?.(ended)]);
  return ended;
}

function byKind(injected: Injected[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { fault } of injected) {
    const key = fault.kind === 'nats-restart' ? 'nats_restart' : `${fault.kind}_${fault.service.replace('-', '_')}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
