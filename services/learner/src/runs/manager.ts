// Runs: created from a spec, executed stage by stage, cancelled on request, and picked up
// again where their last checkpoint left them when a learner starts. The run's status and
// history live in JetStream (runs/events.ts), not in this process.
import type { Tracer } from '@opentelemetry/api';
import type { Bus } from '@temper/bus';
import type { CheckpointClient } from '@temper/checkpoint-client';
import { RunEvent, RunSpec, RunState, RunStatus, StageSpec } from '@temper/proto';
import type { Logger } from '@temper/service';
import { randomUUID } from 'node:crypto';
import { confineSpec, DataRoots } from '../data-roots';
import { checkRunSpec, SpecError } from '../spec';
import { StageContext, StageResult } from '../stages/context';
import { runEvalStage } from '../stages/eval';
import { runGrpoStage } from '../stages/grpo';
import { runMidTrainStage } from '../stages/midtrain';
import { runSftStage } from '../stages/sft';
import { allStatuses, latestStatus, publishRunEvent, publishStatus, runEvents } from './events';

export interface RunManagerDeps {
  bus: Bus;
  store: CheckpointClient;
  log: Logger;
  tracer: Tracer;
  threads: number;
  rolloutTimeoutMs: number;
  /** Where the files a run spec names may be (default: none, so only built-in data). */
  dataRoots?: DataRoots;
}

/** One line of descent through the stages (see executeStages). */
interface Lane {
  branch: string;
  input?: string;
  inputStage?: string;
}

type StageRunner = (ctx: StageContext, stage: StageSpec) => Promise<StageResult>;

// The stage kinds this learner can run.
const runners: Partial<Record<NonNullable<StageSpec['kind']>['$case'], StageRunner>> = {
  midtrain: (ctx, stage) => runMidTrainStage(ctx, (stage.kind as Extract<StageSpec['kind'], { $case: 'midtrain' }>).value),
  sft: (ctx, stage) => runSftStage(ctx, (stage.kind as Extract<StageSpec['kind'], { $case: 'sft' }>).value),
  eval: (ctx, stage) => runEvalStage(ctx, (stage.kind as Extract<StageSpec['kind'], { $case: 'eval' }>).value),
  grpo: (ctx, stage) => runGrpoStage(ctx, (stage.kind as Extract<StageSpec['kind'], { $case: 'grpo' }>).value),
};

export const terminalStates = new Set([RunState.RUN_STATE_SUCCEEDED, RunState.RUN_STATE_FAILED, RunState.RUN_STATE_CANCELLED]);

export class NotFoundError extends Error {}

export class RunManager {
  private readonly active = new Map<string, AbortController>();

  readonly dataRoots: DataRoots;

  constructor(private readonly deps: RunManagerDeps) {
    this.dataRoots = deps.dataRoots ?? new DataRoots([]);
  }

  /** Creates and starts a run; the same runId again returns the existing run. */
  async create(spec: RunSpec, runId = ''): Promise<RunStatus> {
    const checked = checkRunSpec(spec);
    // Checked now, so a path the run may not read is refused before the run exists.
    confineSpec(checked, this.dataRoots);
    const unsupported = checked.stages.filter((s) => !runners[s.kind!.$case]);
    if (unsupported.length) {
      throw new SpecError(unsupported.map((s) => `stages.${s.name}: this learner runs ${Object.keys(runners).join(', ')} stages, not ${s.kind!.$case}`));
    }
    const id = runId || `${slug(checked.name || 'run')}-${randomUUID().slice(0, 8)}`;
    const existing = await latestStatus(this.deps.bus, id);
    if (existing) return existing;
    const now = new Date();
    const status = RunStatus.fromPartial({ runId: id, name: checked.name, state: RunState.RUN_STATE_PENDING, createdAt: now, updatedAt: now, spec: checked });
    await publishStatus(this.deps.bus, status);
    this.execute(status);
    return status;
  }

  async get(runId: string): Promise<RunStatus> {
    const s = await latestStatus(this.deps.bus, runId);
    if (!s) throw new NotFoundError(`no run "${runId}"`);
    return s;
  }

  async list(states: RunState[] = []): Promise<RunStatus[]> {
    const all = await allStatuses(this.deps.bus);
    return states.length ? all.filter((s) => states.includes(s.state)) : all;
  }

  async cancel(runId: string): Promise<RunStatus> {
    const s = await this.get(runId);
    if (terminalStates.has(s.state)) return s;
    const running = this.active.get(runId);
    if (running) running.abort();
    // Recorded here as well: a run whose learner is gone must not be resumed later.
    const cancelled = { ...s, state: RunState.RUN_STATE_CANCELLED, updatedAt: new Date() };
    await publishStatus(this.deps.bus, cancelled);
    return cancelled;
  }

  watch(runId: string, signal: AbortSignal): AsyncGenerator<RunEvent> {
    return runEvents(this.deps.bus, runId, (e) => e.event?.$case === 'status' && terminalStates.has(e.event.value.state), signal);
  }

  /** Runs left pending or running by a learner that stopped: continue them from their checkpoints. */
  async resumeUnfinished(): Promise<string[]> {
    const unfinished = (await this.list([RunState.RUN_STATE_PENDING, RunState.RUN_STATE_RUNNING])).filter((s) => !this.active.has(s.runId));
    for (const s of unfinished) {
      this.deps.log.info('resuming run', { run_id: s.runId, stage: s.stage, step: s.step });
      this.execute(s);
    }
    return unfinished.map((s) => s.runId);
  }

  /** Stops executing (the runs stay RUNNING, to be resumed by the next learner). */
  async shutdown(): Promise<void> {
    for (const c of this.active.values()) c.abort(new Error('learner stopping'));
    while (this.active.size) await new Promise((r) => setTimeout(r, 50));
  }

  private execute(initial: RunStatus): void {
    const controller = new AbortController();
    this.active.set(initial.runId, controller);
    void this.executeStages(initial, controller.signal).finally(() => this.active.delete(initial.runId));
  }

  private async executeStages(initial: RunStatus, signal: AbortSignal): Promise<void> {
    const { bus, log } = this.deps;
    const runLog = log.child({ run_id: initial.runId });
    let status: RunStatus = { ...initial, state: RunState.RUN_STATE_RUNNING, updatedAt: new Date() };
    const update = async (patch: Partial<RunStatus>) => {
      status = { ...status, ...patch, updatedAt: new Date() };
      await publishStatus(bus, status);
    };
    try {
      await update({});
      // The stages see each file as the real path it resolved to inside the data roots (checked
      // again here: a resumed run is confined by this learner's roots).
      const spec = confineSpec(initial.spec!, this.dataRoots);
      // A lane is one line of descent through the stages: one at first, one per branch after
      // a mid-training fork; every later stage runs once per lane.
      // A checkpoint named by an id prefix or a tag: the stages record its full id as their parent.
      const start = spec.model?.checkpoint ? (await this.deps.store.resolve(spec.model.checkpoint)).id : spec.model?.path ? await this.storeModelDir(status.runId, spec.model.path) : undefined;
      let lanes: Lane[] = [{ branch: '', input: start }];
      // Stages before the one the run was in have finished; their output is the next input.
      // Lanes are not recorded, so after a fork the stages run again from the first: the
      // finished ones find their outputs in the store (mid-training and SFT look for them,
      // GRPO resumes from its last checkpoint).
      let startAt = Math.max(0, spec.stages.findIndex((s) => s.name === initial.stage));
      const forked = spec.stages.slice(0, startAt).some((s) => s.kind?.$case === 'midtrain' && s.kind.value.branches.length > 0);
      if (forked) startAt = 0;
      if (startAt > 0) lanes = [{ branch: '', input: initial.lastCheckpointId || lanes[0].input, inputStage: spec.stages[startAt - 1].name }];
      for (const stage of spec.stages.slice(startAt)) {
        const next: Lane[] = [];
        for (const lane of lanes) {
          const fixed = stage.input && stage.input !== 'previous';
          const input = fixed ? stage.input : lane.input;
          await update({ stage: stage.name, branch: lane.branch, step: 0 });
          const ctx = this.stageContext(status, spec, stage, { ...lane, input, inputStage: fixed ? undefined : lane.inputStage }, signal, runLog, update);
          const result = await runners[stage.kind!.$case]!(ctx, ctx.stage);
          await update({ lastCheckpointId: result.checkpointId });
          if (result.branches?.length) next.push(...result.branches.map((b) => ({ branch: b.name, input: b.checkpointId, inputStage: stage.name })));
          else next.push({ branch: lane.branch, input: result.checkpointId, inputStage: stage.name });
        }
        lanes = next;
      }
      await update({ state: RunState.RUN_STATE_SUCCEEDED });
      runLog.info('run succeeded');
    } catch (err) {
      if (signal.aborted) {
        const stopping = signal.reason instanceof Error && signal.reason.message === 'learner stopping';
        if (!stopping) await update({ state: RunState.RUN_STATE_CANCELLED });
        runLog.info(stopping ? 'run left for the next learner' : 'run cancelled');
        return;
      }
      runLog.error('run failed', { err });
      await update({ state: RunState.RUN_STATE_FAILED, error: err instanceof Error ? err.message : String(err) }).catch(() => undefined);
    }
  }

  /** A model directory the spec names, stored as the run's starting checkpoint (its files once, however often). */
  private async storeModelDir(runId: string, dir: string): Promise<string> {
    const { manifest, created } = await this.deps.store.pushDir(dir, { runId, branch: 'main', labels: { source: 'model.path' } });
    this.deps.log.info('stored the run\'s model directory', { run_id: runId, checkpoint: manifest.id, created });
    return manifest.id;
  }

  private stageContext(
    status: RunStatus,
    spec: RunSpec,
    stage: StageSpec,
    lane: Lane,
    signal: AbortSignal,
    log: Logger,
    update: (patch: Partial<RunStatus>) => Promise<void>,
  ): StageContext {
    const { bus, store, tracer, threads, rolloutTimeoutMs } = this.deps;
    const { branch, input, inputStage } = lane;
    return {
      // After a fork each branch is addressed as "<run>-<branch>" in the store and on the bus,
      // so one branch's rollout requests, policy versions and resumable checkpoints are never
      // taken for another's (its metrics and status stay the run's).
      runId: branch ? `${status.runId}-${branch}` : status.runId,
      spec,
      // Per branch, the stage's checkpoints and resumption are its own.
      stage: branch ? { ...stage, name: `${stage.name}.${branch}` } : stage,
      branch,
      input,
      inputStage,
      bus,
      store,
      log: log.child({ stage: stage.name, ...(branch ? { branch } : {}) }),
      tracer,
      threads,
      signal,
      rolloutTimeoutMs,
      emitMetrics: async (step, totalSteps, values, options = {}) => {
        const metrics = { stage: options.stage ?? stage.name, branch: options.branch ?? branch, step, values, kind: options.kind ?? '' };
        await publishRunEvent(bus, RunEvent.fromPartial({ runId: status.runId, time: new Date(), event: { $case: 'metrics', value: metrics } }));
        if (options.kind !== 'eval') await update({ step, totalSteps });
      },
      emitCheckpoint: async (id) => {
        await publishRunEvent(bus, RunEvent.fromPartial({ runId: status.runId, time: new Date(), event: { $case: 'checkpointId', value: id } }));
        await update({ lastCheckpointId: id });
      },
    };
  }
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'run';
}
