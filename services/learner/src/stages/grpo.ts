// The GRPO stage, distributed. Each step, in this order:
//
//   ask        the step's rollout requests are out: asked for while the step before trained
//              (or now, for the first steps), naming the policy versions allowed to sample them
//   collect    its scored groups come back from generators and scorers; stale ones (and with
//              dynamic sampling, flat ones) are asked for again, a few rounds at most
//   ask ahead  the step max_policy_lag + 1 ahead is asked for while this one trains, for the
//              version this step makes: generators hold it and start the moment it arrives
//   learn      advantages, the policy-gradient loss, the engine's backward and optimizer step
//   publish    the new version's weights stream to the generators, which serve them from their
//              next batch; its checkpoint is written and uploads behind the next step (one at
//              a time, in step order), or at once when the weights could not be streamed
//   report     the step's metrics, and an evaluation when one is due
//
// Synchronous (max_policy_lag 0): a step's groups are sampled by the policy being trained.
// Asynchronous (max_policy_lag k): the groups of the next k steps are asked for ahead, so
// sampling overlaps training; a group sampled more than k versions back is dropped and
// replaced.
//
// Work that runs behind a step (requests sent ahead, checkpoint uploads) fails the run with its
// cause where the stage next waits for it; a failure while the stage is already failing is
// logged. A step left short of groups, or whose weights could not be streamed, says so in its
// metrics and the log.
import { buildTrainingBatch, learningRate, TrainingBatch } from '@temper/algorithms';
import type { Model, StepOptions } from '@temper/native';
import { GrpoStage } from '@temper/proto';
import { createTokenizer, TokenizerSpec } from '@temper/tokenizers';
import { grpoStep, GrpoLossConfig, GrpoStepMetrics, referenceLogprobs } from '@temper/training';
import { exportWeights, RunState, streamWeights, Weights, writeCheckpoint } from '../checkpoints';
import { openPrompts } from '../prompts';
import { CheckpointUploads } from '../grpo/checkpoint-uploads';
import { collectStep, toPromptGroup } from '../grpo/collect';
import { grpoDefaults, GrpoSettings, lossConfig, optimizerOf, scheduleOf } from '../grpo/config';
import { describeShortfall, reportedComponents, stepMetrics } from '../grpo/metrics';
import { loadReference } from '../grpo/reference';
import { startingPoint } from '../grpo/starting-point';
import { stepRecord } from '../grpo/step-record';
import { StepRollouts } from '../grpo/step-rollouts';
import { StageContext, StageResult } from './context';
import { evalDue, evaluatePolicy } from './eval';

export async function runGrpoStage(ctx: StageContext, stageSpec: GrpoStage): Promise<StageResult> {
  const g = grpoDefaults(stageSpec);
  const start = await startingPoint(ctx, g.adapter);
  const { model, tokenizerSpec } = start;
  await model.setTrainingOptions({ recompute: stageSpec.recompute });
  const tokenizer = createTokenizer(tokenizerSpec);
  const trainer: Trainer = {
    loss: lossConfig(g),
    optimizer: optimizerOf(g),
    // With adapters the reference is the frozen base in the same model (the adapters switched off).
    reference: g.klBeta <= 0 ? null : model.hasAdapters ? 'base' : await loadReference(ctx, start.referenceId, g.referencePrecision),
  };
  const schedule = scheduleOf(g);
  const reported = reportedComponents(ctx.spec.reward);
  let state = start.state;
  const rollouts = await StepRollouts.open(ctx, g, tokenizer, openPrompts(g.task!, Number(ctx.spec.seed), state.dataCursor), state.attempt, state.step);
  const uploads = new CheckpointUploads(ctx, start.lastCheckpointId);
  ctx.log.info('grpo stage starting', { stage: ctx.stage.name, fromStep: state.step, steps: g.steps, policyVersion: state.policyVersion, maxPolicyLag: g.maxPolicyLag, adapter: g.adapter?.kind ?? 'none' });
  try {
    while (state.step < g.steps) {
      if (ctx.signal.aborted) throw new Error('cancelled');
      uploads.check();
      const step = state.step + 1;
      const version = state.policyVersion;
      const stepStart = performance.now();
      const { next, ...report } = await rollouts.traced(step, async () => {
        // ask
        await rollouts.askThrough(Math.min(g.steps, step + g.maxPolicyLag), version);
        uploads.startHeld(); // the step before's checkpoint, now that the requests are out

        // collect
        const collected = await collectStep(rollouts, g, step, version);
        if (collected.groups.length < collected.asked) ctx.log.warn('step trains on fewer groups than it asked for', { step, ...describeShortfall(collected) });
        const waitedMs = performance.now() - stepStart;

        // ask ahead
        const ahead = step + g.maxPolicyLag + 1;
        if (ahead <= g.steps) rollouts.askAhead(ahead, version + 1);

        // learn
        const learnStart = performance.now();
        const batch = buildTrainingBatch(collected.groups.map(toPromptGroup), { estimator: g.estimator, filterOverlong: g.filterOverlong, padId: tokenizer.specialTokens.pad ?? 0 });
        const lr = learningRate(step - 1, schedule);
        const train = await learn(model, batch, trainer, lr);
        const learnMs = performance.now() - learnStart;
        await rollouts.aheadSent();

        // publish
        const syncStart = performance.now();
        const next: RunState = { ...state, step, policyVersion: version + 1, dataCursor: rollouts.cursorAfter(step), tokensSeen: state.tokensSeen + batch.maskedTokens };
        const streamed = await publish(ctx, g, model, tokenizerSpec, next, uploads, start.referenceId);
        const syncMs = performance.now() - syncStart;
        return { collected, batch, train, lr, policyVersion: next.policyVersion, streamed, waitedMs, learnMs, syncMs, next };
      });
      // report
      ctx.log.info('step trained', { ...stepRecord(step, state.attempt, report.collected.groups) });
      rollouts.done(step);
      state = next;
      await ctx.emitMetrics(step, g.steps, stepMetrics({ ...report, stepMs: performance.now() - stepStart }, reported));
      if (evalDue(ctx, step, g.steps, g.evalEvery)) await evaluatePolicy(ctx, model, tokenizer, step, g.steps, g.task);
    }
    return { checkpointId: await uploads.latest() };
  } finally {
    // What still runs behind the last step ends before the stage does. Its failures fail the
    // run above (latest, aheadSent); here they can only follow another, which fails it: logged.
    const late = [await uploads.end(), ...(await rollouts.stop(state.step >= g.steps))];
    for (const err of late) if (err) ctx.log.error('grpo stage: work behind the steps failed too', { err });
  }
}

interface Trainer {
  loss: GrpoLossConfig;
  optimizer: Omit<StepOptions, 'lr'>;
  /** The frozen reference policy for the KL term: a model, the base under the adapters, or null without one. */
  reference: Model | 'base' | null;
}

/** One optimisation step on the batch; null when nothing in it trains. */
async function learn(model: Model, batch: TrainingBatch, t: Trainer, lr: number): Promise<GrpoStepMetrics | null> {
  if (batch.n === 0 || batch.maskedTokens === 0) return null;
  const ref =
    t.reference === 'base'
      ? await model.withoutAdapters(() => referenceLogprobs(model, batch, t.loss.microBatchSize))
      : t.reference
        ? await referenceLogprobs(t.reference, batch, t.loss.microBatchSize)
        : undefined;
  return grpoStep(model, batch, t.loss, { ...t.optimizer, lr }, ref);
}

/**
 * Publishes the policy the step made: its weights straight to the generators, its checkpoint
 * (a full one, with optimizer and run state, every save_every steps and at the end) queued to
 * upload. Generators that were not sent the weights wait for the checkpoint's commit, and so
 * does the step. Returns whether the weights were streamed. With adapters, the weights that
 * move and are stored are the adapters alone, over the base in `baseId` (the step-0 checkpoint).
 */
async function publish(ctx: StageContext, g: GrpoSettings, model: Model, tokenizerSpec: TokenizerSpec, next: RunState, uploads: CheckpointUploads, baseId: string): Promise<boolean> {
  const weights = await exportWeights(model);
  const streamed = weights !== undefined && (await stream(ctx, next, weights));
  const full = next.step % g.saveEvery === 0 || next.step === g.steps;
  const writing = writeCheckpoint(model, {
    tokenizer: tokenizerSpec,
    manifest: { runId: ctx.runId, stage: ctx.stage.name, step: next.step, tokensSeen: next.tokensSeen, branch: ctx.branch || ctx.stage.name, labels: { kind: full ? 'resumable' : 'policy' } },
    runState: full ? next : undefined,
    policyVersion: next.policyVersion,
    weights,
    adapterBase: model.hasAdapters ? baseId : undefined,
  });
  uploads.add(next.step, writing, full);
  if (!streamed || next.step === g.steps) uploads.startHeld();
  if (!streamed) await uploads.latest();
  else await uploads.behindAtMost();
  return streamed;
}

/** Streams the weights to the generators; a failure is logged and reported (they pull the checkpoint instead). */
async function stream(ctx: StageContext, next: RunState, weights: Weights): Promise<boolean> {
  try {
    await streamWeights(ctx.bus, ctx.runId, next.policyVersion, weights);
    return true;
  } catch (err) {
    ctx.log.warn('could not stream the new weights; generators pull the checkpoint instead', { step: next.step, policyVersion: next.policyVersion, err });
    return false;
  }
}
