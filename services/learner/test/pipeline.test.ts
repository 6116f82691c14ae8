// A short pipeline through the RunManager over real NATS and a real checkpoint store:
// mid-training forks into two branches, and SFT and evaluation then run once per branch,
// each from its branch's checkpoint; metrics events carry the branch, evaluations name the
// stage they evaluated.
import { RunEvent, RunState, StageSpec } from '@temper/proto';
import { createLogger } from '@temper/service';
import { trace } from '@opentelemetry/api';
import { Model } from '@temper/native';
import { createTokenizer } from '@temper/tokenizers';
import { saveCheckpoint } from '../src/checkpoints';
import { RunManager } from '../src/runs/manager';
import { runSpecFromYaml } from '../src/spec';
import { StageHarness, startStageHarness, tinyConfig } from './stage-harness';

const yaml = `
name: tiny-pipeline
seed: 3
model: { tokenizer: bytes, config: ${JSON.stringify(tinyConfig)} }
eval: { task: { uri: "builtin:arithmetic", fields: { difficulty: "1" } }, num_prompts: 4, pass_k: 2, sampling: { max_new_tokens: 8 } }
stages:
  - name: mid
    midtrain:
      seq_len: 32
      batch_size: 2
      stable_tokens: 256
      optimizer: { lr: 0.005 }
      mixture: { sources: [ { name: web, uri: "builtin:web-math", weight: 1 } ] }
      branches:
        - { name: a, tokens: 128, mixture: { sources: [ { name: qa, uri: "builtin:qa-short-cot", weight: 1 } ] } }
        - { name: b, tokens: 64 }
  - name: sft
    sft: { adapter: { kind: dora, rank: 2, use_rslora: true, merge_on_export: true }, num_examples: 8, batch_size: 4 }
  - name: check
    eval: {}
`;

describe('a pipeline through the run manager', () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('runs the stages after a fork once per branch, from that branch', async () => {
    const log = createLogger('learner-test');
    const quiet = { ...log, info: () => undefined, debug: () => undefined, child: () => quiet };
    const manager = new RunManager({ bus: h.bus, store: h.store, log: quiet, tracer: trace.getTracer('t'), threads: 1, rolloutTimeoutMs: 5000 });
    const spec = runSpecFromYaml(yaml);
    expect(spec.stages.map((s: StageSpec) => s.kind?.$case)).toEqual(['midtrain', 'sft', 'eval']);
    const runId = `pipeline-${process.pid}-${Date.now()}`;
    await manager.create(spec, runId);
    const events: RunEvent[] = [];
    for await (const e of manager.watch(runId, new AbortController().signal)) events.push(e);
    const final = events.filter((e) => e.event?.$case === 'status').pop()!;
    expect(final.event?.$case === 'status' && [final.event.value.state, final.event.value.error]).toEqual([RunState.RUN_STATE_SUCCEEDED, '']);

    const metrics = events.flatMap((e) => (e.event?.$case === 'metrics' ? [e.event.value] : []));
    const seen = (stage: string, branch: string, kind = '') => metrics.filter((m) => m.stage === stage && m.branch === branch && m.kind === kind).map((m) => m.step);
    expect(seen('mid', '')).toEqual([1, 2, 3, 4]);
    expect(seen('mid', 'a')).toEqual([5, 6]);
    expect(seen('mid', 'b')).toEqual([5]);
    expect(seen('sft', 'a')).toEqual([1, 2]);
    expect(seen('sft', 'b')).toEqual([1, 2]);
    // One evaluation per branch, of the SFT checkpoint at its last step.
    expect(seen('sft', 'a', 'eval')).toEqual([2]);
    expect(seen('sft', 'b', 'eval')).toEqual([2]);
    expect(metrics.filter((m) => m.kind === 'eval')).toHaveLength(2);

    // Lineage: each branch's SFT checkpoint descends from its own decay checkpoint.
    const { checkpoints } = await h.store.list({ runId });
    // After the fork a branch's checkpoints are stored under "<run>-<branch>".
    for (const branch of ['a', 'b']) checkpoints.push(...(await h.store.list({ runId: `${runId}-${branch}` })).checkpoints);
    const stable = checkpoints.find((c) => c.labels.phase === 'stable')!;
    for (const branch of ['a', 'b']) {
      const decay = checkpoints.find((c) => c.labels.phase === 'decay' && c.branch === branch)!;
      expect(decay.parentId).toBe(stable.id);
      const sft = checkpoints.find((c) => c.stage === `sft.${branch}`)!;
      expect(sft.parentId).toBe(decay.id);
      expect(sft.branch).toBe(branch);
    }
  });

  it('starts from a checkpoint named by a tag or an id prefix, and records its full id as the parent', async () => {
    const quiet = { ...createLogger('learner-test'), info: () => undefined, debug: () => undefined, child: () => quiet };
    const manager = new RunManager({ bus: h.bus, store: h.store, log: quiet, tracer: trace.getTracer('t'), threads: 1, rolloutTimeoutMs: 5000 });
    const base = await saveCheckpoint(h.store, await Model.create({ ...tinyConfig, vocab_size: createTokenizer({ kind: 'byte' }).vocabSize }, { seed: 5, threads: 1 }), { tokenizer: { kind: 'byte' }, manifest: { runId: 'base', stage: 'base', branch: 'main' } });
    const tag = `base-${process.pid}`;
    await h.store.tag(base.id, tag);
    for (const ref of [tag, base.id.slice(0, 12)]) {
      const runId = `from-${ref.slice(0, 8)}-${process.pid}-${Date.now()}`;
      const spec = runSpecFromYaml(`
name: from-checkpoint
seed: 3
model: { checkpoint: "${ref}", tokenizer: bytes }
stages:
  - name: sft
    sft: { num_examples: 4, batch_size: 4, data: { sources: [ { name: a, uri: "builtin:arithmetic", weight: 1, fields: { difficulty: "1" } } ] } }
`);
      await manager.create(spec, runId);
      const events: RunEvent[] = [];
      for await (const e of manager.watch(runId, new AbortController().signal)) events.push(e);
      const final = events.filter((e) => e.event?.$case === 'status').pop()!;
      expect(final.event?.$case === 'status' && [final.event.value.state, final.event.value.error]).toEqual([RunState.RUN_STATE_SUCCEEDED, '']);
      const { checkpoints } = await h.store.list({ runId });
      expect(checkpoints.map((c) => c.parentId)).toEqual([base.id]);
    }
  });
});
