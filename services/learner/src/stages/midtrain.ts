// Mid-training: next-token training on a weighted mixture of corpora, packed into fixed-length
// sequences, with a Stable-then-Decay learning rate. The stable phase (warm-up, then the peak
// rate) runs once on the stage's mixture and is saved; then each decay branch starts from the
// stable checkpoint (weights and optimizer state), decays the rate on its own mixture for its
// own token budget, and is saved as a child of the stable checkpoint, named by its branch.
//
// With branches the stage forks the run: its result lists the branches and the stages after
// it run once per branch (runs/manager.ts). Without branches the decay (schedule.decay_steps,
// if any) follows the stable phase on the stage's mixture and the stage ends in one checkpoint.
//
// Resumption: a phase whose checkpoint (labels.final = "true") is in the store is not trained
// again; a phase cut short continues from its newest progress checkpoint (save_every).
import { learningRate, Schedule } from '@temper/algorithms';
import type { Model } from '@temper/native';
import { CheckpointManifest, DataMixture, MidTrainStage, ScheduleKind } from '@temper/proto';
import { createTokenizer, TokenizerSpec } from '@temper/tokenizers';
import { loadCheckpoint, saveCheckpoint } from '../checkpoints';
import { packedBatches, tokenShares } from '../data/packed-batches';
import { crossEntropyBackward, inputModel, optimizerFrom } from '../data/training';
import { StageContext, StageResult } from './context';

export interface MidTrainPhase {
  /** "stable", or the branch's name. */
  name: string;
  mixture: DataMixture;
  /** Global optimizer steps [from, to) of this phase. */
  from: number;
  to: number;
  /** The schedule that gives this phase's learning rates at its global steps. */
  schedule: Schedule;
}

export interface MidTrainPlan {
  seqLen: number;
  batchSize: number;
  tokensPerStep: number;
  stable: MidTrainPhase;
  /** Decay branches; without branches in the spec, one unnamed decay phase (when it has steps). */
  decays: MidTrainPhase[];
  forks: boolean;
  packing: 'split' | 'truncate';
}

const steps = (tokens: number, perStep: number) => Math.ceil(tokens / perStep);

/**
 * Token budgets to optimizer steps and the learning rate of every phase. The stable phase
 * takes ceil(stable_tokens / (batch_size × seq_len)) steps, warm-up included; a branch takes
 * ceil(tokens / (batch_size × seq_len)) steps of decay (schedule.decay_steps when it gives no
 * tokens) to min_lr_ratio × peak, continuing the global step count from the stable phase.
 */
export function midTrainPlan(spec: MidTrainStage): MidTrainPlan {
  const seqLen = spec.seqLen || 128;
  const batchSize = spec.batchSize || 8;
  const tokensPerStep = seqLen * batchSize;
  const s = spec.schedule;
  if (s && s.kind !== ScheduleKind.SCHEDULE_KIND_UNSPECIFIED && s.kind !== ScheduleKind.SCHEDULE_KIND_WARMUP_STABLE_DECAY) {
    throw new Error('mid-training uses the warmup_stable_decay schedule (leave schedule.kind out or set it to warmup_stable_decay)');
  }
  const stableSteps = steps(Number(spec.stableTokens), tokensPerStep);
  if (stableSteps < 1) throw new Error('mid-training needs stable_tokens > 0');
  const warmupSteps = Math.min(Number(s?.warmupSteps ?? 0), stableSteps);
  const peakLr = spec.optimizer?.lr || 1e-3;
  const base = {
    kind: 'warmup_stable_decay' as const,
    peakLr,
    warmupSteps,
    stableSteps: stableSteps - warmupSteps,
    minLrRatio: s?.minLrRatio ?? 0.1,
    decayShape: s?.decayShape === 'linear' ? ('linear' as const) : ('cosine' as const),
  };
  const mixture = spec.mixture ?? DataMixture.fromPartial({});
  const stable: MidTrainPhase = { name: 'stable', mixture, from: 0, to: stableSteps, schedule: { ...base, decaySteps: 0 } };
  const names = new Set<string>();
  const decays = spec.branches.map((b, i): MidTrainPhase => {
    const name = b.name || `branch-${i}`;
    if (names.has(name)) throw new Error(`mid-training branch "${name}" is listed twice`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) throw new Error(`mid-training branch name "${name}" must be letters, digits, "-" or "_"`);
    names.add(name);
    const n = steps(Number(b.tokens), tokensPerStep) || Number(s?.decaySteps ?? 0);
    if (n < 1) throw new Error(`mid-training branch "${name}" needs tokens (or schedule.decay_steps)`);
    return { name, mixture: b.mixture?.sources.length ? b.mixture : mixture, from: stableSteps, to: stableSteps + n, schedule: { ...base, decaySteps: n } };
  });
  const forks = decays.length > 0;
  if (!forks && Number(s?.decaySteps ?? 0) > 0) {
    const n = Number(s!.decaySteps);
    decays.push({ name: '', mixture, from: stableSteps, to: stableSteps + n, schedule: { ...base, decaySteps: n } });
  }
  if (spec.packing && spec.packing !== 'split' && spec.packing !== 'truncate') throw new Error(`mid-training packing must be "split" or "truncate", not "${spec.packing}"`);
  return { seqLen, batchSize, tokensPerStep, stable, decays, forks, packing: spec.packing === 'truncate' ? 'truncate' : 'split' };
}

export async function runMidTrainStage(ctx: StageContext, spec: MidTrainStage): Promise<StageResult> {
  const plan = midTrainPlan(spec);
  const seed = Number(ctx.spec.seed);
  const optimizer = optimizerFrom(spec.optimizer, { lr: 1e-3, weightDecay: 0.1 });
  const saveEvery = spec.saveEvery;

  // 1. The stable phase, unless a finished one is in the store.
  let stable = await findPhase(ctx, stableBranch(ctx), 'stable');
  if (stable) ctx.log.info('mid-training: stable phase already done', { checkpoint: stable.id });
  else {
    stable = await runPhase(ctx, plan, plan.stable, {
      kind: 'stable',
      branch: stableBranch(ctx),
      parentId: ctx.input ?? '',
      tokensBefore: 0,
      seed: `${seed}:stable`,
      optimizer,
      saveEvery,
      start: () => inputModel(ctx),
    });
  }
  const stableId = stable.id;
  if (plan.decays.length === 0) return { checkpointId: stableId };

  // 2. Each decay phase from the stable checkpoint (weights and optimizer state).
  const outputs: { name: string; checkpointId: string }[] = [];
  for (const phase of plan.decays) {
    const branch = phase.name || stableBranch(ctx);
    let done = await findPhase(ctx, branch, 'decay', stableId);
    if (!done) {
      done = await runPhase(ctx, plan, phase, {
        kind: 'decay',
        branch,
        parentId: stableId,
        tokensBefore: Number(stable.tokensSeen),
        seed: `${seed}:decay:${phase.name}`,
        optimizer,
        saveEvery,
        start: async () => {
          const loaded = await loadCheckpoint(ctx.store, stableId, { threads: ctx.threads, optimizer: true });
          return { model: loaded.model, tokenizer: loaded.tokenizer ?? { kind: 'byte' } };
        },
      });
    }
    outputs.push({ name: phase.name, checkpointId: done.id });
  }
  if (!plan.forks) return { checkpointId: outputs[0].checkpointId };
  return { checkpointId: stableId, branches: outputs };
}

interface PhaseRun {
  kind: 'stable' | 'decay';
  branch: string;
  /** The phase's checkpoints are children of this one (the input, or the stable checkpoint). */
  parentId: string;
  tokensBefore: number;
  seed: string;
  optimizer: ReturnType<typeof optimizerFrom>;
  saveEvery: number;
  start(): Promise<{ model: Model; tokenizer: TokenizerSpec }>;
}

/**
 * Trains a phase from its start, or from its newest progress checkpoint (save_every), and saves
 * its final checkpoint (with the optimizer state and position, which branches continue from).
 */
async function runPhase(ctx: StageContext, plan: MidTrainPlan, phase: MidTrainPhase, run: PhaseRun): Promise<CheckpointManifest> {
  const save = async (model: Model, tokenizer: TokenizerSpec, step: number, tokensSeen: number, final: boolean) => {
    const manifest = await saveCheckpoint(ctx.store, model, {
      tokenizer,
      manifest: {
        runId: ctx.runId,
        stage: ctx.stage.name,
        step,
        tokensSeen,
        branch: run.branch,
        parentId: run.parentId,
        labels: final ? { phase: run.kind, final: 'true' } : { phase: run.kind, progress: 'true' },
      },
      runState: { runId: ctx.runId, stage: ctx.stage.name, step, policyVersion: 0, dataCursor: step - phase.from, attempt: 0, tokensSeen },
    });
    await ctx.emitCheckpoint(manifest.id);
    return manifest;
  };
  const { checkpoints } = await ctx.store.list({ runId: ctx.runId, stage: ctx.stage.name });
  const progress = checkpoints
    .filter((c) => c.branch === run.branch && c.parentId === run.parentId && c.labels.phase === run.kind && c.labels.progress === 'true')
    .sort((a, b) => b.step - a.step)[0];
  let model: Model;
  let tokenizerSpec: TokenizerSpec;
  let from = phase.from;
  let tokens = 0;
  if (progress) {
    const loaded = await loadCheckpoint(ctx.store, progress.id, { threads: ctx.threads, optimizer: true });
    model = loaded.model;
    tokenizerSpec = loaded.tokenizer ?? { kind: 'byte' };
    from = Number(progress.step);
    tokens = Number(progress.tokensSeen) - run.tokensBefore;
    ctx.log.info('mid-training: resuming phase', { phase: phase.name || 'decay', step: from, checkpoint: progress.id });
  } else {
    ({ model, tokenizer: tokenizerSpec } = await run.start());
  }
  const tokenizer = createTokenizer(tokenizerSpec);
  const stream = packedBatches(phase.mixture.sources, tokenizer, { seqLen: plan.seqLen, batchSize: plan.batchSize, seed: run.seed, policy: plan.packing });
  // The data stream is a function of its seed: skip what the phase had already trained on.
  for (let s = phase.from; s < from; s++) stream.next();
  const branch = run.kind === 'stable' ? undefined : phase.name || undefined;
  ctx.log.info('mid-training phase starting', { phase: phase.name || 'decay', from, to: phase.to });
  for (let step = from; step < phase.to; step++) {
    if (ctx.signal.aborted) throw new Error('cancelled');
    const t0 = performance.now();
    const batch = stream.next();
    const lr = learningRate(step, phase.schedule);
    const { loss, targets } = await crossEntropyBackward(model, batch);
    const gradNorm = await model.step({ ...run.optimizer, lr });
    tokens += targets;
    const seconds = (performance.now() - t0) / 1000;
    const values: Record<string, number> = { loss, lr, grad_norm: gradNorm, 'tokens_per_s/train': (batch.batch * batch.seqLen) / seconds, tokens_seen: run.tokensBefore + tokens };
    for (const [source, share] of Object.entries(tokenShares(stream.stats))) values[`mix/${source}`] = share;
    await ctx.emitMetrics(step + 1, phase.to, values, branch ? { branch } : {});
    const done = step + 1 - phase.from;
    if (run.saveEvery > 0 && done % run.saveEvery === 0 && step + 1 < phase.to) await save(model, tokenizerSpec, step + 1, run.tokensBefore + tokens, false);
  }
  return save(model, tokenizerSpec, phase.to, run.tokensBefore + tokens, true);
}

// The stable checkpoint carries the lane's branch ('' before any fork: the stage's name).
function stableBranch(ctx: StageContext): string {
  return ctx.branch || ctx.stage.name;
}

// A phase's checkpoint is saved when the phase has finished: finding it means it is done.
async function findPhase(ctx: StageContext, branch: string, phase: 'stable' | 'decay', parentId?: string): Promise<CheckpointManifest | undefined> {
  const { checkpoints } = await ctx.store.list({ runId: ctx.runId, stage: ctx.stage.name });
  return checkpoints.find((c) => c.branch === branch && c.labels.phase === phase && c.labels.final === 'true' && (parentId === undefined || c.parentId === parentId));
}
