// The GRPO stage, distributed: each step asks the generators for G completions of P prompts,
// waits for the scorers' rewards, trains on the groups, and publishes the new weights as the
// next policy version for the generators to pick up.
//
// A step ends by publishing the new weights: streamed to the generators, which serve them from
// their next batch on, while the checkpoint that commits them uploads in the background (one
// upload at a time, in step order, awaited before the stage ends). The upload starts once the
// next step's rollout requests are out, so it never delays them.
//
// Synchronous (max_policy_lag 0): a step's groups are sampled by the policy being trained;
// they are asked for while the step before trains, naming the version it will make, and the
// generators start on them as soon as its weights arrive. Asynchronous (max_policy_lag k): the groups of the next k steps are asked for ahead, so
// sampling overlaps training; a group sampled more than k versions back is dropped, counted
// and asked for again.
import { buildTrainingBatch, learningRate, ScoredPromptGroup, Schedule } from '@temper/algorithms';
import { HfConfig, Model } from '@temper/native';
import { FinishReason, GrpoStage, ScoredGroup } from '@temper/proto';
import { createTokenizer, TokenizerSpec } from '@temper/tokenizers';
import { grpoStep, GrpoLossConfig, referenceLogprobs } from '@temper/training';
import { exportWeights, latestPolicyVersion, latestResumable, loadCheckpoint, RunState, saveCheckpoint, streamWeights, writeCheckpoint } from '../checkpoints';
import { openPrompts } from '../prompts';
import { RolloutExchange } from '../rollouts';
import { grpoDefaults, GrpoSettings, lossConfig, optimizerOf, scheduleOf } from '../grpo/config';
import { GroupRequests } from '../grpo/requests';
import { StepTraces } from '../grpo/step-traces';
import { StageContext, StageResult } from './context';
import { evalDue, evaluatePolicy } from './eval';

export async function runGrpoStage(ctx: StageContext, stageSpec: GrpoStage): Promise<StageResult> {
  const g = grpoDefaults(stageSpec);
  const stageName = ctx.stage.name;
  const setup = await startingPoint(ctx);
  const { model, tokenizerSpec } = setup;
  let state = setup.state;
  const tokenizer = createTokenizer(tokenizerSpec);
  const loss: GrpoLossConfig = lossConfig(g);
  const schedule: Schedule = scheduleOf(g);
  const optimizer = optimizerOf(g);
  const reference = g.klBeta > 0 ? (await loadCheckpoint(ctx.store, setup.referenceId, { threads: ctx.threads })).model : null;
  const prompts = openPrompts(g.task!, Number(ctx.spec.seed), state.dataCursor);
  const exchange = new RolloutExchange(ctx.bus, ctx.runId, state.attempt, ctx.log);
  await exchange.start();
  const requests = new GroupRequests(ctx, exchange, g, tokenizer, prompts, state.attempt);
  const firstGroups = new Map<number, number[]>();
  let requestedThrough = state.step;
  /** The requests of the step asked for ahead, being sent. */
  let askingAhead: Promise<void> = Promise.resolve();
  /** The id of the newest checkpoint of the stage, once its upload is done. */
  let committing: Promise<string> = Promise.resolve(setup.lastCheckpointId);
  /** Starts the upload of the checkpoint written last (set until it is started). */
  let startUpload: (() => void) | undefined;
  const branch = ctx.branch || stageName;
  const traces = new StepTraces(ctx.tracer, ctx.runId);
  /** Asks for step `s`'s groups, for policy versions >= `version`, inside the step's trace. */
  const ask = async (s: number, version: number): Promise<void> => {
    firstGroups.set(s, await traces.within(s, () => requests.request(s, g.promptsPerStep, version)));
  };
  ctx.log.info('grpo stage starting', { stage: stageName, fromStep: state.step, steps: g.steps, policyVersion: state.policyVersion, maxPolicyLag: g.maxPolicyLag });
  try {
    while (state.step < g.steps) {
      if (ctx.signal.aborted) throw new Error('cancelled');
      const step = state.step + 1;
      const stepStart = performance.now();
      const outcome = await traces.run(step, async () => {
        // 1. Rollouts: this step's groups (and, asynchronously, the next steps'), scored.
        while (requestedThrough < Math.min(g.steps, step + g.maxPolicyLag)) {
          await ask(++requestedThrough, state.policyVersion);
        }
        startUpload?.();
        const rollouts = await collectStep(ctx, exchange, requests, g, step, firstGroups.get(step)!, state.policyVersion);
        const groups = rollouts.kept;
        const waited = performance.now() - stepStart;
        // The step maxPolicyLag + 1 ahead is asked for while this one trains (the engine computes
        // off this thread), for the version it makes: the generators hold the requests and start
        // on them the moment that version's weights come.
        const ahead = step + g.maxPolicyLag + 1;
        if (ahead <= g.steps && requestedThrough < ahead) {
          requestedThrough = ahead;
          const version = state.policyVersion + 1;
          askingAhead = new Promise<void>((resolve) => setImmediate(resolve)).then(() => ask(ahead, version));
          askingAhead.catch(() => undefined); // surfaces below
        }
        // 2. Learn.
        const learnStart = performance.now();
        const batch = buildTrainingBatch(groups.map(toPromptGroup), {
          estimator: g.estimator,
          filterOverlong: g.filterOverlong,
          padId: tokenizer.specialTokens.pad ?? 0,
        });
        const lr = learningRate(step - 1, schedule);
        let train = null;
        if (batch.n > 0 && batch.maskedTokens > 0) {
          const ref = reference ? await referenceLogprobs(reference, batch, loss.microBatchSize) : undefined;
          train = await grpoStep(model, batch, loss, { ...optimizer, lr }, ref);
        }
        const learnMs = performance.now() - learnStart;
        await askingAhead;
        // 3. Publish the new policy: its weights straight to the generators, then as a checkpoint
        // (a full one, with optimizer and run state, every save_every steps).
        const syncStart = performance.now();
        const next: RunState = { ...state, step, policyVersion: state.policyVersion + 1, dataCursor: requests.cursorAfter(step), tokensSeen: state.tokensSeen + batch.maskedTokens };
        // A model with adapters is not streamed: its checkpoint holds the base weights alone.
        const weights = model.hasAdapters ? undefined : await exportWeights(model);
        const streamed =
          weights !== undefined &&
          (await streamWeights(ctx.bus, ctx.runId, next.policyVersion, weights).then(
            () => true,
            (err: unknown) => {
              ctx.log.warn('could not stream the new weights; generators pull the checkpoint instead', { err });
              return false;
            },
          ));
        const full = step % g.saveEvery === 0 || step === g.steps;
        const written = writeCheckpoint(model, {
          tokenizer: tokenizerSpec,
          manifest: { runId: ctx.runId, stage: stageName, step, tokensSeen: next.tokensSeen, branch, labels: { kind: full ? 'resumable' : 'policy' } },
          runState: full ? next : undefined,
          policyVersion: next.policyVersion,
          weights,
        });
        written.catch(() => undefined); // surfaces through committing
        startUpload = () => {
          startUpload = undefined;
          committing = (async (previous) => {
            const upload = await written;
            const manifest = await upload(ctx.store, { parentId: await previous });
            if (full) await ctx.emitCheckpoint(manifest.id);
            return manifest.id;
          })(committing);
          committing.catch(() => undefined); // surfaces where it is awaited
        };
        // Generators that were not sent the weights wait for the commit; so does this step.
        if (!streamed || step === g.steps) startUpload();
        if (!streamed) await committing;
        const syncMs = performance.now() - syncStart;
        return { groups, stale: rollouts.stale, flat: rollouts.flat, batch, train, lr, waited, learnMs, syncMs, next };
      });
      exchange.commit(step);
      requests.done(step);
      firstGroups.delete(step);
      state = outcome.next;
      const stepMs = performance.now() - stepStart;
      await ctx.emitMetrics(step, g.steps, stepMetrics(outcome, stepMs));
      if (evalDue(ctx, step, g.steps, g.evalEvery)) await evaluatePolicy(ctx, model, tokenizer, step, g.steps, g.task);
    }
    return { checkpointId: await committing };
  } finally {
    traces.endAll();
    startUpload?.();
    await committing.catch(() => undefined);
    await askingAhead.catch(() => undefined); // withdrawn below, not sent after
    if (state.step < g.steps) await exchange.withdrawRequests().catch((err: unknown) => ctx.log.warn('could not withdraw the rollout requests left', { err }));
    await exchange.stop();
  }
}

interface StartingPoint {
  model: Model;
  tokenizerSpec: TokenizerSpec;
  state: RunState;
  referenceId: string;
  lastCheckpointId: string;
}

// Resume from the stage's newest resumable checkpoint, else start from the input (or a new
// model), publishing it as policy version 1 so the generators have something to serve.
async function startingPoint(ctx: StageContext): Promise<StartingPoint> {
  const stage = ctx.stage.name;
  const resumable = await latestResumable(ctx.store, ctx.runId, stage);
  if (resumable) {
    const loaded = await loadCheckpoint(ctx.store, resumable.id, { threads: ctx.threads, optimizer: true });
    // Generators may hold versions the lost learner published after this checkpoint: the
    // resumed weights become a version above all of those, so nobody serves a stale one.
    const policyVersion = (await latestPolicyVersion(ctx.bus, ctx.runId)) + 1;
    const state: RunState = { ...loaded.runState!, attempt: loaded.runState!.attempt + 1, policyVersion };
    ctx.log.info('resuming grpo stage', { stage, step: state.step, checkpoint: resumable.id, policyVersion });
    // The store announces it as that version (CheckpointCommitted): generators pull it, or attach it to weights they hold.
    await ctx.store.announce(loaded.manifest, policyVersion);
    return { model: loaded.model, tokenizerSpec: loaded.tokenizer!, state, referenceId: await referenceOf(ctx, resumable.id), lastCheckpointId: resumable.id };
  }
  let model: Model;
  let tokenizerSpec: TokenizerSpec;
  if (ctx.input) {
    const loaded = await loadCheckpoint(ctx.store, ctx.input, { threads: ctx.threads });
    model = loaded.model;
    tokenizerSpec = loaded.tokenizer ?? tokenizerFromSpec(ctx);
  } else {
    tokenizerSpec = tokenizerFromSpec(ctx);
    const config = { ...(ctx.spec.model?.config ?? {}) };
    config.vocab_size ??= createTokenizer(tokenizerSpec).vocabSize;
    // The engine checks the config and names what is missing or wrong.
    model = await Model.create(config as HfConfig, { seed: Number(ctx.spec.seed), threads: ctx.threads });
  }
  const state: RunState = { runId: ctx.runId, stage, step: 0, policyVersion: 1, dataCursor: 0, attempt: 0, tokensSeen: 0 };
  const initial = await saveCheckpoint(ctx.store, model, {
    tokenizer: tokenizerSpec,
    manifest: { runId: ctx.runId, stage, step: 0, branch: ctx.branch || stage, parentId: ctx.input ?? '', labels: { kind: 'resumable', role: 'reference' } },
    runState: state,
    policyVersion: state.policyVersion,
  });
  return { model, tokenizerSpec, state, referenceId: initial.id, lastCheckpointId: initial.id };
}

// The stage's step-0 checkpoint is its reference policy; walk the lineage back to it.
async function referenceOf(ctx: StageContext, checkpointId: string): Promise<string> {
  const { ancestors } = await ctx.store.lineage(checkpointId);
  const start = ancestors.find((a) => a.stage === ctx.stage.name && a.step === 0 && a.runId === ctx.runId);
  return start?.id ?? checkpointId;
}

function tokenizerFromSpec(ctx: StageContext): TokenizerSpec {
  const t = ctx.spec.model?.tokenizer || 'bytes';
  return t === 'bytes' || t === 'byte' ? { kind: 'byte' } : { kind: 'huggingface', path: t };
}

// The step's scored groups, waiting for those asked for; groups sampled too many versions
// back, and with dynamic sampling groups whose rewards are all equal, are replaced by new ones
// (a few rounds at most).
async function collectStep(
  ctx: StageContext,
  exchange: RolloutExchange,
  requests: GroupRequests,
  g: GrpoSettings,
  step: number,
  first: number[],
  policyVersion: number,
): Promise<{ kept: ScoredGroup[]; stale: number; flat: number }> {
  const kept: ScoredGroup[] = [];
  let stale = 0;
  let flat = 0;
  let indices = first;
  for (let round = 0; ; round++) {
    let missing = 0;
    for (const sg of await exchange.collect(step, indices, ctx.rolloutTimeoutMs, ctx.signal)) {
      const rewards = sg.rewards.map((r) => r.total);
      if (policyVersion - (sg.group?.policyVersion ?? 0) > g.maxPolicyLag) {
        stale++;
        missing++;
      } else if (g.dynamicSampling && rewards.every((r) => r === rewards[0])) {
        flat++;
        missing++;
      } else {
        kept.push(sg);
      }
    }
    if (missing === 0 || round === 3) return { kept, stale, flat };
    indices = await requests.request(step, missing, policyVersion);
  }
}

function toPromptGroup(sg: ScoredGroup): ScoredPromptGroup {
  const group = sg.group!;
  return {
    promptIds: group.prompt?.tokenIds ?? [],
    completions: group.completions.map((c) => ({
      tokenIds: c.tokenIds,
      logprobs: c.logprobs,
      finishReason: c.finishReason === FinishReason.FINISH_REASON_LENGTH ? 'length' : c.finishReason === FinishReason.FINISH_REASON_ABORTED ? 'aborted' : 'stop',
    })),
    rewards: sg.rewards.map((r) => r.total),
  };
}

interface StepOutcome {
  groups: ScoredGroup[];
  /** Groups dropped for being sampled too many versions back, or (dynamic sampling) flat. */
  stale: number;
  flat: number;
  batch: { n: number; maskedTokens: number; stats: { degenerateGroups: number; overlongCompletions: number } };
  train: Awaited<ReturnType<typeof grpoStep>> | null;
  lr: number;
  waited: number;
  learnMs: number;
  syncMs: number;
  next: RunState;
}

function stepMetrics(o: StepOutcome, stepMs: number): Record<string, number> {
  const rewards = o.groups.flatMap((g) => g.rewards);
  const completions = o.groups.flatMap((g) => g.group?.completions ?? []);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);
  const values: Record<string, number> = {
    'reward/total': mean(rewards.map((r) => r.total)),
    response_length: mean(completions.map((c) => c.tokenIds.length)),
    groups: o.groups.length,
    degenerate_groups: o.batch.stats.degenerateGroups + o.flat,
    stale_groups: o.stale,
    overlong_completions: o.batch.stats.overlongCompletions,
    lr: o.lr,
    policy_version: o.next.policyVersion,
    policy_lag: mean(o.groups.map((g) => o.next.policyVersion - 1 - (g.group?.policyVersion ?? 0))),
    'time/step_s': stepMs / 1000,
    'time/rollout_wait_s': o.waited / 1000,
    // Engine and scoring time spent on this step's groups (a batch's time is shared among its groups).
    'time/generate_s': sum(o.groups.map((g) => g.group?.generateSeconds ?? 0)),
    'time/score_s': sum(o.groups.map((g) => g.scoreSeconds)),
    'time/learn_s': o.learnMs / 1000,
    'time/sync_s': o.syncMs / 1000,
    'tokens_per_s/train': o.batch.maskedTokens / Math.max(1e-9, o.learnMs / 1000),
    'tokens_per_s/generate': sum(completions.map((c) => c.tokenIds.length)) / Math.max(1e-9, sum(o.groups.map((g) => g.group?.generateSeconds ?? 0))),
  };
  for (const name of new Set(rewards.flatMap((r) => Object.keys(r.components)))) {
    values[`reward/${name}`] = mean(rewards.map((r) => r.components[name] ?? 0));
  }
  // Training-batch accuracy: the share solved outright (countdown's partial credit is not a solve).
  const judge = ['accuracy', 'countdown'].find((name) => name in (rewards[0]?.components ?? {}));
  if (judge) values.accuracy = mean(rewards.map((r) => (r.components[judge] >= 1 ? 1 : 0)));
  if ('format' in (rewards[0]?.components ?? {})) values.format_rate = mean(rewards.map((r) => (r.components.format >= 1 ? 1 : 0)));
  if (o.train) {
    values.loss = o.train.loss;
    values.kl = o.train.kl;
    values.entropy = o.train.entropy;
    values.clip_fraction = o.train.clipFraction;
    values.grad_norm = o.train.gradNorm;
  }
  return values;
}
