// Evaluation: held-out items only, the metrics computed from completions, a tiny model
// evaluated through the engine, and the eval stage's report about the stage it evaluated.
import { formatCompletion, splitOf, taskStream } from '@temper/data';
import { Model } from '@temper/native';
import { DataSource, EvalStage, RunSpec } from '@temper/proto';
import { createTokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EvalCompletion, evalItems, evalSettings, evaluateModel, scoreCompletions } from '../src/eval/evaluate';
import { evalDue, runEvalStage } from '../src/stages/eval';
import { runSpecFromYaml } from '../src/spec';
import { StageHarness, startStageHarness, tinyConfig } from './stage-harness';

const arithmetic = DataSource.fromPartial({ name: 'arithmetic', uri: 'builtin:arithmetic', fields: { difficulty: '1,2' } });
const tokenizer = createTokenizer({ kind: 'byte' });

describe('evaluation', () => {
  it('draws distinct held-out problems only', async () => {
    const items = await evalItems(arithmetic, 40, 0);
    expect(items).toHaveLength(40);
    expect(new Set(items.map((i) => i.canonical)).size).toBe(40);
    for (const i of items) expect(splitOf(i.canonical!)).toBe('eval');
    // None of them is posed in training.
    const train = new Set<string>();
    const stream = taskStream({ task: 'arithmetic', split: 'train', difficulty: [1, 2], seed: 0 });
    for (let n = 0; n < 3000; n++) train.add(stream.next().value!.canonical);
    for (const i of items) expect(train.has(i.canonical!)).toBe(false);
    // The easiest level holds fewer distinct held-out problems than asked for: all of them come back.
    const few = await evalItems(DataSource.fromPartial({ uri: 'builtin:arithmetic', fields: { difficulty: '1' } }), 500, 0);
    expect(few.length).toBeGreaterThan(10);
    expect(few.length).toBeLessThan(500);
  });

  it('scores accuracy, pass@k, format and length from completions', async () => {
    const items = await evalItems(arithmetic, 4, 1);
    const right = (i: number) => formatCompletion('work', items[i].answer);
    const c = (prompt: number, text: string, finishReason: 'stop' | 'length' = 'stop', tokens = 10): EvalCompletion => ({ prompt, text, finishReason, tokens });
    const greedy = [
      c(0, right(0)),
      c(1, right(1), 'length', 20), // correct, but it did not stop: not well formed
      c(2, `<answer>${items[2].answer}</answer>`, 'stop', 6), // correct answer, wrong format
      c(3, formatCompletion('work', `${items[3].answer}1`), 'stop', 12), // well formed, wrong
    ];
    const sampled = [c(0, 'x'), c(0, 'y'), c(1, 'x'), c(1, right(1)), c(2, 'x'), c(2, 'x'), c(3, right(3)), c(3, right(3))];
    const r = scoreCompletions(items, greedy, sampled, 2);
    expect(r).toMatchObject({ accuracy: 0.75, format_rate: 0.5, response_length: 12, prompts: 4, pass_at_k: 0.5, sample_accuracy: 3 / 8, sample_format_rate: 3 / 8, k: 2 });
  });

  it('judges a JSONL task by its reference answer', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-eval-jsonl-'));
    const file = path.join(dir, 'qa.jsonl');
    fs.writeFileSync(file, '{"q":"2+2?","a":4}\n{"q":"capital of France?","a":"Paris"}\n');
    const items = await evalItems(DataSource.fromPartial({ uri: file, fields: { prompt: 'q', reference: 'a' } }), 10, 0);
    expect(items.map((i) => i.prompt)).toEqual(['2+2?', 'capital of France?']);
    expect(items[0].correct('<think>x</think><answer> 4 </answer>')).toBe(true);
    expect(items[1].correct('<think>x</think><answer>Lyon</answer>')).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('evaluates a tiny model through the engine, the same way twice', async () => {
    const model = await Model.create({ ...tinyConfig, vocab_size: tokenizer.vocabSize }, { seed: 4, threads: 1 });
    const settings = evalSettings(runSpecFromYaml(`stages: [{ eval: {} }]\neval: { num_prompts: 6, pass_k: 3, sampling: { max_new_tokens: 12 } }`).eval, arithmetic);
    expect(settings).toMatchObject({ numPrompts: 6, passK: 3, maxNewTokens: 12, task: arithmetic });
    const a = await evaluateModel(model, tokenizer, settings);
    expect(a.prompts).toBe(6);
    expect(a.k).toBe(3);
    expect(a.response_length).toBeGreaterThan(0);
    expect(a.response_length).toBeLessThanOrEqual(12);
    for (const v of [a.accuracy, a.format_rate, a.pass_at_k!, a.sample_accuracy!]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    const b = await evaluateModel(model, tokenizer, settings);
    expect({ ...b, seconds: 0 }).toEqual({ ...a, seconds: 0 });
  });

  it('evaluates a GRPO stage every eval_every steps, and at its last step only when no eval stage follows', () => {
    const spec = (after: string) =>
      runSpecFromYaml(`
stages:
  - { name: rl, grpo: { steps: 10, eval_every: 4 } }
${after}`);
    const due = (s: RunSpec, branch: string, every: number) =>
      Array.from({ length: 10 }, (_, i) => i + 1).filter((step) => evalDue({ spec: s, stage: { ...s.stages[0], name: branch ? `rl.${branch}` : 'rl' }, branch }, step, 10, every));
    const followed = spec('  - { name: check, eval: {} }');
    expect(due(followed, '', 4)).toEqual([4, 8]);
    expect(due(followed, 'long', 5)).toEqual([5]);
    expect(due(followed, '', 0)).toEqual([]);
    const alone = spec('  - { name: more, sft: {} }');
    expect(due(alone, '', 5)).toEqual([5, 10]);
    expect(due(alone, 'short', 4)).toEqual([4, 8]);
    expect(due(alone, 'short', 2)).toEqual([2, 4, 6, 8, 10]);
    // An eval stage of another checkpoint does not evaluate this one.
    expect(due(spec('  - { name: check, input: base, eval: {} }'), '', 5)).toEqual([5, 10]);
  });

  describe('the eval stage', () => {
    let h: StageHarness;
    beforeAll(async () => {
      h = await startStageHarness();
    });
    afterAll(async () => {
      await h?.stop();
    });

    it('reports on the stage that produced its input, at that stage step, and passes the input on', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-eval-input-'));
      const model = await Model.create({ ...tinyConfig, vocab_size: tokenizer.vocabSize }, { seed: 4, threads: 1 });
      await model.save(dir);
      fs.writeFileSync(path.join(dir, 'temper-tokenizer.json'), JSON.stringify({ kind: 'byte' }));
      const input = (await h.store.pushDir(dir, { runId: 'eval-input', stage: 'sft', step: 17 })).manifest.id;
      fs.rmSync(dir, { recursive: true, force: true });

      const spec: RunSpec = runSpecFromYaml(`
seed: 1
eval: { task: { uri: "builtin:arithmetic", fields: { difficulty: "1" } }, num_prompts: 5, pass_k: 2, sampling: { max_new_tokens: 8 } }
stages: [{ name: after-sft, eval: {} }]
`);
      const ctx = h.context(spec, spec.stages[0], { input, inputStage: 'sft', branch: 'long' });
      const result = await runEvalStage(ctx, (spec.stages[0].kind as { value: EvalStage }).value);
      expect(result).toEqual({ checkpointId: input });
      expect(ctx.metrics).toHaveLength(1);
      const [m] = ctx.metrics;
      expect(m.options).toEqual({ kind: 'eval', stage: 'sft' });
      expect(m.step).toBe(17);
      expect(m.values).toMatchObject({ prompts: 5, k: 2 });
      // The same model evaluated directly gives the same numbers.
      const direct = await evaluateModel(model, tokenizer, evalSettings(spec.eval, undefined, 1));
      expect(m.values.accuracy).toBe(direct.accuracy);
      expect(m.values.response_length).toBe(direct.response_length);
    });
  });
});
