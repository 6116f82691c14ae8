// Mid-training through the real engine and a real checkpoint store: the Stable-then-Decay
// learning rate at chosen steps, the mixture's token shares and the packing as trained on,
// and the branches saved as children of the stable checkpoint.
import { MidTrainStage, RunSpec, StageSpec } from '@temper/proto';
import { createTokenizer } from '@temper/tokenizers';
import { packedBatches } from '../src/data/packed-batches';
import { midTrainPlan, runMidTrainStage } from '../src/stages/midtrain';
import { runSpecFromYaml } from '../src/spec';
import { StageHarness, startStageHarness, tinyConfig } from './stage-harness';

const yaml = `
name: mid
seed: 5
model: { tokenizer: bytes, config: ${JSON.stringify(tinyConfig)} }
stages:
  - name: mid
    midtrain:
      seq_len: 32
      batch_size: 2
      stable_tokens: 640
      schedule: { warmup_steps: 2, min_lr_ratio: 0.1, decay_shape: linear }
      optimizer: { lr: 0.01 }
      mixture:
        sources:
          - { name: web, uri: "builtin:web-math", weight: 3 }
          - { name: instr, uri: "builtin:instructions", weight: 1 }
      branches:
        - { name: short, tokens: 320, mixture: { sources: [ { name: qa, uri: "builtin:qa-short-cot", weight: 1, fields: { difficulty: "1" } } ] } }
        - { name: long, tokens: 192, mixture: { sources: [ { name: web, uri: "builtin:web-math", weight: 1 }, { name: qa-long, uri: "builtin:qa-long-cot", weight: 1 } ] } }
`;

describe('mid-training', () => {
  let h: StageHarness;
  let spec: RunSpec;
  let stage: StageSpec;
  let mid: MidTrainStage;
  beforeAll(async () => {
    h = await startStageHarness();
    spec = runSpecFromYaml(yaml);
    stage = spec.stages[0];
    mid = (stage.kind as { $case: 'midtrain'; value: MidTrainStage }).value;
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('turns token budgets into steps: 10 stable, then 5 and 3 decay steps per branch', () => {
    const plan = midTrainPlan(mid);
    expect(plan.tokensPerStep).toBe(64);
    expect([plan.stable.from, plan.stable.to]).toEqual([0, 10]);
    expect(plan.decays.map((d) => [d.name, d.from, d.to])).toEqual([
      ['short', 10, 15],
      ['long', 10, 13],
    ]);
  });

  it('trains the stable phase once and each branch from it, saved as children of the stable checkpoint', async () => {
    const ctx = h.context(spec, stage);
    const result = await runMidTrainStage(ctx, mid);

    // Lineage in the store.
    const { checkpoints } = await h.store.list({ runId: ctx.runId });
    const stable = checkpoints.find((c) => c.labels.phase === 'stable')!;
    expect(stable).toBeDefined();
    expect(stable.step).toBe(10);
    expect(stable.parentId).toBe('');
    expect(result.checkpointId).toBe(stable.id);
    const decays = checkpoints.filter((c) => c.labels.phase === 'decay');
    expect(decays.map((c) => [c.branch, c.parentId, c.step]).sort()).toEqual([
      ['long', stable.id, 13],
      ['short', stable.id, 15],
    ]);
    expect(result.branches).toEqual([
      { name: 'short', checkpointId: decays.find((c) => c.branch === 'short')!.id },
      { name: 'long', checkpointId: decays.find((c) => c.branch === 'long')!.id },
    ]);
    const lineage = await h.store.lineage(stable.id);
    expect(lineage.descendants.map((d) => d.branch).sort()).toEqual(['long', 'short']);
    for (const d of decays) expect(d.tokensSeen).toBeGreaterThan(stable.tokensSeen);
    expect(ctx.checkpoints).toEqual([stable.id, ...result.branches!.map((b) => b.checkpointId)]);

    // The learning rate as trained, at chosen steps (metrics step s reports optimizer step s-1):
    // linear warm-up over 2 steps, the peak 0.01, then per branch a linear decay to 0.001.
    const lr = (branch: string | undefined, step: number) => ctx.metrics.find((m) => m.options.branch === branch && m.step === step)!.values.lr;
    expect(lr(undefined, 1)).toBe(0);
    expect(lr(undefined, 2)).toBeCloseTo(0.005, 12);
    expect(lr(undefined, 3)).toBeCloseTo(0.01, 12);
    expect(lr(undefined, 10)).toBeCloseTo(0.01, 12);
    // short: 5 decay steps; step index 10 + i trains at 0.01 · (0.1 + 0.9 · (1 - i/5)).
    expect(lr('short', 11)).toBeCloseTo(0.01, 12);
    expect(lr('short', 13)).toBeCloseTo(0.01 * (0.1 + 0.9 * 0.6), 12);
    expect(lr('short', 15)).toBeCloseTo(0.01 * (0.1 + 0.9 * 0.2), 12);
    // long: 3 decay steps.
    expect(lr('long', 12)).toBeCloseTo(0.01 * (0.1 + 0.9 * (2 / 3)), 12);
    expect(lr('long', 13)).toBeCloseTo(0.01 * (0.1 + 0.9 * (1 / 3)), 12);
    expect(ctx.metrics.filter((m) => m.options.branch === 'short').map((m) => m.step)).toEqual([11, 12, 13, 14, 15]);

    // It learns: the loss falls over the stable phase.
    const stableLoss = ctx.metrics.filter((m) => m.options.branch === undefined).map((m) => m.values.loss);
    expect(stableLoss[stableLoss.length - 1]).toBeLessThan(stableLoss[0] - 0.5);
    // The mixture as trained: web-math about 3 tokens for each of instructions'.
    const last = ctx.metrics.filter((m) => m.options.branch === undefined).slice(-1)[0].values;
    expect(last['mix/web'] + last['mix/instr']).toBeCloseTo(1, 9);
    expect(Math.abs(last['mix/web'] - 0.75)).toBeLessThan(0.15);
    expect(ctx.metrics.filter((m) => m.options.branch === 'short').slice(-1)[0].values['mix/qa']).toBe(1);

    // Run again (a resumed run): nothing is trained, the same checkpoints come back.
    const again = h.context(spec, stage, { runId: ctx.runId });
    expect(await runMidTrainStage(again, mid)).toEqual(result);
    expect(again.metrics).toEqual([]);
  });

  it('draws the mixture by tokens and packs documents with EOS, no target across a document start', () => {
    const tokenizer = createTokenizer({ kind: 'byte' });
    const eos = tokenizer.specialTokens.eos!;
    const stream = packedBatches(mid.mixture!.sources, tokenizer, { seqLen: 64, batchSize: 4, seed: 'mix-test' });
    let rows = 0;
    for (let b = 0; b < 60; b++) {
      const batch = stream.next();
      expect(batch.tokens.length).toBe(4 * 64);
      for (let r = 0; r < 4; r++) {
        const row = batch.tokens.subarray(r * 64, (r + 1) * 64);
        const mask = batch.lossMask.subarray(r * 64, (r + 1) * 64);
        // Split packing fills every row.
        expect(batch.lengths[r]).toBe(64);
        expect(mask[0]).toBe(0);
        for (let t = 1; t < 64; t++) {
          // The token after an EOS starts a new document: never predicted from the one before.
          if (row[t - 1] === eos) expect(mask[t]).toBe(0);
          else expect(mask[t]).toBe(1);
        }
        rows++;
      }
    }
    expect(rows).toBe(240);
    // Token shares follow the weights 3:1 within a document's length.
    const { web, instr } = stream.stats.units;
    expect(web / (web + instr)).toBeGreaterThan(0.72);
    expect(web / (web + instr)).toBeLessThan(0.78);
  });

  it('continues a phase cut short from its last progress checkpoint, to the same weights', async () => {
    const resumable = runSpecFromYaml(yaml.replace('stable_tokens: 640', 'stable_tokens: 640\n      save_every: 3'));
    const stageR = resumable.stages[0];
    const midR = (stageR.kind as { value: MidTrainStage }).value;
    const weights = async (runId: string, branch: string) => {
      const c = (await h.store.list({ runId })).checkpoints.find((m) => m.branch === branch && m.labels.final === 'true')!;
      return c.files.find((f) => f.path === 'model.safetensors')!.sha256;
    };
    // Uninterrupted.
    const whole = h.context(resumable, stageR);
    await runMidTrainStage(whole, midR);
    // Stopped during step 8 of the stable phase (progress saved after steps 3 and 6) ...
    const cut = h.context(resumable, stageR);
    const stop = new AbortController();
    cut.signal = stop.signal;
    const emit = cut.emitMetrics;
    cut.emitMetrics = async (step, total, values, options) => {
      await emit(step, total, values, options);
      if (step === 7) stop.abort();
    };
    await expect(runMidTrainStage(cut, midR)).rejects.toThrow('cancelled');
    const progress = (await h.store.list({ runId: cut.runId })).checkpoints.filter((c) => c.labels.progress === 'true').map((c) => c.step);
    expect(progress.sort()).toEqual([3, 6]);
    // ... and started again: it trains from step 7 on and ends where the uninterrupted run did.
    const resumed = h.context(resumable, stageR, { runId: cut.runId });
    await runMidTrainStage(resumed, midR);
    expect(resumed.metrics.filter((m) => m.options.branch === undefined).map((m) => m.step)).toEqual([7, 8, 9, 10]);
    expect(resumed.metrics.find((m) => m.step === 7)!.values.loss).toBe(cut.metrics.find((m) => m.step === 7)!.values.loss);
    expect(await weights(cut.runId, 'mid')).toBe(await weights(whole.runId, 'mid'));
    expect(await weights(cut.runId, 'short')).toBe(await weights(whole.runId, 'short'));
  });

  it('refuses a schedule other than warmup_stable_decay and branches without a budget', () => {
    const bad = runSpecFromYaml(yaml.replace('schedule: { warmup_steps: 2', 'schedule: { kind: cosine, warmup_steps: 2'));
    expect(() => midTrainPlan((bad.stages[0].kind as { value: MidTrainStage }).value)).toThrow(/warmup_stable_decay/);
    const noBudget = runSpecFromYaml(yaml.replace('tokens: 192, ', ''));
    expect(() => midTrainPlan((noBudget.stages[0].kind as { value: MidTrainStage }).value)).toThrow(/branch "long" needs tokens/);
  });
});
