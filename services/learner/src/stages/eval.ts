// The eval stage: evaluates its input checkpoint on the held-out split and reports the result
// as an 'eval' metrics event about the stage that produced the checkpoint (stage, branch and
// that stage's step), so a run's summary holds one entry per evaluation. It passes its input
// on unchanged. evaluatePolicy is the same evaluation for a stage's model in memory (GRPO's
// eval_every).
import { CheckpointClient, pullPolicyDir } from '@temper/checkpoint-client';
import { Model } from '@temper/native';
import { CheckpointManifest, DataSource, EvalStage, RunSpec } from '@temper/proto';
import { ADAPTER_DIR } from '@temper/service';
import { createTokenizer, Tokenizer, TokenizerSpec } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTokenizer } from '../tokenizer-files';
import { tokenizerOfRun } from '../data/training';
import { EvalResult, evalMetrics, evalSettings, evaluateModel } from '../eval/evaluate';
import { StageContext, StageResult } from './context';

export async function runEvalStage(ctx: StageContext, spec: EvalStage): Promise<StageResult> {
  if (!ctx.input) throw new Error(`stage ${ctx.stage.name}: an eval stage needs an input checkpoint (a stage before it, or input:)`);
  const loaded = await loadForEval(ctx.store, ctx.input, ctx.threads);
  const tokenizer = createTokenizer(loaded.tokenizer ?? tokenizerOfRun(ctx));
  const settings = evalSettings(spec.eval ?? ctx.spec.eval, defaultEvalTask(ctx.spec), Number(ctx.spec.seed), ctx.spec.model?.chat);
  const result = await evaluateModel(loaded.model, tokenizer, settings);
  const step = Number(loaded.manifest.step);
  ctx.log.info('evaluated', { checkpoint: ctx.input, of: ctx.inputStage, ...evalMetrics(result) });
  await ctx.emitMetrics(step, step, evalMetrics(result), { kind: 'eval', stage: ctx.inputStage ?? 'model' });
  return { checkpointId: ctx.input };
}

/**
 * Evaluates a stage's model as it is now and reports it as an 'eval' metrics event of that
 * stage at `step` (for GRPO's eval_every). Settings: the run's eval spec, the task defaulting
 * to `task` (the stage's own).
 */
export async function evaluatePolicy(ctx: StageContext, model: Model, tokenizer: Tokenizer, step: number, totalSteps: number, task?: DataSource): Promise<EvalResult> {
  const settings = evalSettings(ctx.spec.eval, task ?? defaultEvalTask(ctx.spec), Number(ctx.spec.seed), ctx.spec.model?.chat);
  const result = await evaluateModel(model, tokenizer, settings);
  await ctx.emitMetrics(step, totalSteps, evalMetrics(result), { kind: 'eval' });
  return result;
}

/**
 * Whether a training stage evaluates itself after `step` under eval_every = `every` (0: never):
 * at every multiple of it, and at the last step too unless an eval stage right after the
 * stage evaluates that same checkpoint (one entry per checkpoint, not two).
 */
export function evalDue(ctx: Pick<StageContext, 'spec' | 'stage' | 'branch'>, step: number, totalSteps: number, every: number): boolean {
  if (every <= 0 || step % every !== 0) return false;
  if (step < totalSteps) return true;
  const name = ctx.branch ? ctx.stage.name.slice(0, -(ctx.branch.length + 1)) : ctx.stage.name;
  const at = ctx.spec.stages.findIndex((s) => s.name === name);
  const next = at >= 0 ? ctx.spec.stages[at + 1] : undefined;
  return !(next?.kind?.$case === 'eval' && (next.input === '' || next.input === 'previous'));
}

/** The task to evaluate on when the eval spec names none: the first GRPO stage's task. */
export function defaultEvalTask(spec: RunSpec): DataSource | undefined {
  for (const s of spec.stages) if (s.kind?.$case === 'grpo' && s.kind.value.task) return s.kind.value.task;
  return undefined;
}

export interface EvalModel {
  model: Model;
  manifest: CheckpointManifest;
  tokenizer?: TokenizerSpec;
}

/** A checkpoint as a policy: the model, with its adapters when it kept them (SFT without merging). */
export async function loadForEval(store: CheckpointClient, ref: string, threads: number): Promise<EvalModel> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-eval-load-'));
  try {
    const { manifest } = await pullPolicyDir(store, ref, dir);
    const model = await Model.load(dir, { threads });
    if (fs.existsSync(path.join(dir, ADAPTER_DIR, 'adapter_config.json'))) await model.loadAdapters(path.join(dir, ADAPTER_DIR));
    return { model, manifest, tokenizer: readTokenizer(dir) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
