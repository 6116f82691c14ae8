// Where a GRPO stage starts: the stage's newest resumable checkpoint (a resumed learner), else
// its input checkpoint or a new model, saved as the stage's step 0 (its reference policy) and
// published as policy version 1 so the generators have something to serve. A stage that
// trains adapters adds them (B = 0: the policy is still the base) before step 0 is saved, so
// the step-0 checkpoint holds the base and the adapters' starting point, and resumes keep them
// as adapters.
import { HfConfig, Model } from '@temper/native';
import { createTokenizer, TokenizerSpec } from '@temper/tokenizers';
import type { AdapterSettings } from '../stages/adapter';
import { latestPolicyVersion, latestResumable, loadCheckpoint, RunState, saveCheckpoint, UPLOAD_RETRIES } from '../checkpoints';
import type { StageContext } from '../stages/context';

export interface StartingPoint {
  model: Model;
  tokenizerSpec: TokenizerSpec;
  state: RunState;
  /** The stage's step-0 checkpoint: the frozen reference for KL. */
  referenceId: string;
  /** The stage's newest stored checkpoint: the parent of the next. */
  lastCheckpointId: string;
}

export async function startingPoint(ctx: StageContext, adapter?: AdapterSettings): Promise<StartingPoint> {
  const stage = ctx.stage.name;
  // A bf16 base is held so from the start: the adapters added below drop its fp32 copy.
  const precision = adapter?.basePrecision ?? 'fp32';
  const resumable = await latestResumable(ctx.store, ctx.runId, stage);
  if (resumable) {
    const loaded = await loadCheckpoint(ctx.store, resumable.id, { threads: ctx.threads, optimizer: true, keepAdapters: adapter !== undefined, precision });
    // Generators may hold versions the lost learner published after this checkpoint: the
    // resumed weights become a version above all of those, so nobody serves a stale one.
    const policyVersion = (await latestPolicyVersion(ctx.bus, ctx.runId)) + 1;
    const state: RunState = { ...loaded.runState!, attempt: loaded.runState!.attempt + 1, policyVersion };
    ctx.log.info('resuming grpo stage', { stage, step: state.step, checkpoint: resumable.id, policyVersion });
    // The store announces it as that version (CheckpointCommitted): generators pull it, or attach it to weights they hold.
    await ctx.store.announce(loaded.manifest, policyVersion, { retries: UPLOAD_RETRIES }); // a store restarting is waited for, as uploads wait
    return { model: loaded.model, tokenizerSpec: loaded.tokenizer!, state, referenceId: await referenceOf(ctx, resumable.id), lastCheckpointId: resumable.id };
  }
  let model: Model;
  let tokenizerSpec: TokenizerSpec;
  if (ctx.input) {
    const loaded = await loadCheckpoint(ctx.store, ctx.input, { threads: ctx.threads, precision });
    model = loaded.model;
    tokenizerSpec = loaded.tokenizer ?? tokenizerFromSpec(ctx);
  } else {
    tokenizerSpec = tokenizerFromSpec(ctx);
    const config = { ...(ctx.spec.model?.config ?? {}) };
    config.vocab_size ??= createTokenizer(tokenizerSpec).vocabSize;
    // The engine checks the config and names what is missing or wrong.
    model = await Model.create(config as HfConfig, { seed: Number(ctx.spec.seed), threads: ctx.threads, precision });
  }
  if (adapter) {
    await model.addAdapters({ r: adapter.rank, alpha: adapter.alpha, targetModules: adapter.targetModules, useRslora: adapter.useRslora, useDora: adapter.useDora, seed: Number(ctx.spec.seed) });
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
