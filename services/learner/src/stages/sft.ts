// Supervised fine-tuning: prompt/response pairs, the loss on response tokens only, with LoRA,
// rsLoRA or DoRA adapters (only they train) or full fine-tuning. At the end the adapters are
// merged into the base weights (adapter.merge_on_export) or kept: then the checkpoint holds
// the base model and the adapters in PEFT's layout under adapter/ (evaluation loads both; a
// stage that trains on from it loads them merged; `temper export --adapter-only` gives them to
// peft).
//
// A finished SFT stage (its checkpoint labelled final) is not trained again when a run resumes.
import { learningRate } from '@temper/algorithms';
import { collateSft, createRng } from '@temper/data';
import type { Model } from '@temper/native';
import { SftStage } from '@temper/proto';
import { ADAPTER_DIR } from '@temper/service';
import { createTokenizer, TokenizerSpec } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeTokenizer } from '../tokenizer-files';
import { sftExamples } from '../data/sft-examples';
import { crossEntropyBackward, findFinal, inputModel, optimizerFrom, scheduleFrom } from '../data/training';
import { AdapterSettings, adapterSettings } from './adapter';
import { StageContext, StageResult } from './context';

export async function runSftStage(ctx: StageContext, spec: SftStage): Promise<StageResult> {
  const stageName = ctx.stage.name;
  const branch = ctx.branch || stageName;
  const done = await findFinal(ctx.store, ctx.runId, stageName, branch);
  if (done) {
    ctx.log.info('sft stage already done', { checkpoint: done.id });
    return { checkpointId: done.id };
  }
  const seed = Number(ctx.spec.seed);
  const adapter = adapterSettings(spec.adapter, 'sft.adapter');
  const { model, tokenizer: tokenizerSpec } = await inputModel(ctx, { precision: adapter.basePrecision });
  await model.setTrainingOptions({ recompute: spec.recompute });
  const tokenizer = createTokenizer(tokenizerSpec);
  const { examples, dropped } = await sftExamples(spec.data?.sources ?? [], tokenizer, { numExamples: spec.numExamples, maxSeqLen: spec.maxSeqLen || 256, seed: `${seed}:sft`, chat: ctx.spec.model?.chat });
  if (adapter.kind !== 'none') {
    await model.addAdapters({ r: adapter.rank, alpha: adapter.alpha, targetModules: adapter.targetModules, useRslora: adapter.useRslora, useDora: adapter.useDora, seed });
  }
  const batchSize = Math.min(spec.batchSize || 16, examples.length);
  const perEpoch = Math.ceil(examples.length / batchSize);
  const totalSteps = spec.steps || (spec.epochs || 1) * perEpoch;
  const optimizer = optimizerFrom(spec.optimizer, { lr: adapter.kind === 'none' ? 3e-4 : 2e-3, weightDecay: 0 });
  const schedule = scheduleFrom(spec.schedule, optimizer.peakLr, totalSteps, 'cosine');
  ctx.log.info('sft stage starting', { examples: examples.length, dropped, steps: totalSteps, adapter: adapter.kind, rslora: adapter.useRslora });

  const order = batchOrder(examples.length, batchSize, totalSteps, `${seed}:sft-order`);
  const pad = tokenizer.specialTokens.pad ?? tokenizer.specialTokens.eos ?? 0;
  let tokensSeen = 0;
  for (let step = 0; step < totalSteps; step++) {
    if (ctx.signal.aborted) throw new Error('cancelled');
    const t0 = performance.now();
    const rows = order[step].map((i) => examples[i]);
    const batch = collateSft(rows, pad);
    const lr = learningRate(step, schedule);
    const { loss, targets } = await crossEntropyBackward(model, { tokens: batch.tokens, lossMask: batch.lossMask, batch: batch.batch, seqLen: batch.length, lengths: batch.lengths });
    const gradNorm = await model.step({ ...optimizer, lr });
    tokensSeen += targets;
    const seconds = (performance.now() - t0) / 1000;
    await ctx.emitMetrics(step + 1, totalSteps, {
      loss,
      lr,
      grad_norm: gradNorm,
      epoch: (step + 1) / perEpoch,
      'tokens_per_s/train': batch.lengths.reduce((a, b) => a + b, 0) / seconds,
      response_tokens: targets,
    });
  }

  const manifest = await saveSft(ctx, model, tokenizerSpec, adapter, { step: totalSteps, tokensSeen, branch });
  await ctx.emitCheckpoint(manifest.id);
  return { checkpointId: manifest.id };
}

/** Example indices per step: epochs of shuffled examples, cut into batches (a batch may span two epochs). */
export function batchOrder(n: number, batchSize: number, steps: number, seed: string): number[][] {
  const rng = createRng(seed);
  const out: number[][] = [];
  let pool: number[] = [];
  for (let s = 0; s < steps; s++) {
    const rows: number[] = [];
    while (rows.length < batchSize) {
      if (pool.length === 0) pool = rng.shuffle(Array.from({ length: n }, (_, i) => i));
      rows.push(pool.shift()!);
    }
    out.push(rows);
  }
  return out;
}

async function saveSft(ctx: StageContext, model: Model, tokenizer: TokenizerSpec, adapter: AdapterSettings, at: { step: number; tokensSeen: number; branch: string }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-sft-save-'));
  try {
    const keep = adapter.kind !== 'none' && !adapter.merge;
    if (adapter.kind !== 'none' && adapter.merge) await model.mergeAdapters();
    await model.save(dir);
    if (keep) await model.saveAdapters(path.join(dir, ADAPTER_DIR));
    writeTokenizer(dir, tokenizer);
    const labels: Record<string, string> = { final: 'true', adapter: adapter.kind, adapters: keep ? 'kept' : adapter.kind === 'none' ? 'none' : 'merged' };
    if (adapter.useRslora) labels.rslora = 'true';
    const { manifest } = await ctx.store.pushDir(dir, {
      runId: ctx.runId,
      stage: ctx.stage.name,
      step: at.step,
      tokensSeen: at.tokensSeen,
      branch: at.branch,
      parentId: ctx.input ?? '',
      labels,
    });
    return manifest;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
