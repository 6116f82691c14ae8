import * as fs from 'node:fs';
import * as path from 'node:path';
import { compileRewardSpec } from '@temper/rewards';
import { reportedComponents } from '../src/grpo/metrics';
import { runSpecFromYaml, SpecError } from '../src/spec';

function problems(yaml: string): string[] {
  try {
    runSpecFromYaml(yaml);
  } catch (err) {
    if (err instanceof SpecError) return err.problems;
    throw err;
  }
  return [];
}

describe('run specs', () => {
  const examples = path.join(__dirname, '..', '..', '..', 'examples');
  it.each(fs.readdirSync(examples).filter((f) => f.endsWith('.yaml')))('reads examples/%s, its reward spec included', (file) => {
    const spec = runSpecFromYaml(fs.readFileSync(path.join(examples, file), 'utf8'));
    expect(spec.stages.length).toBeGreaterThan(0);
    if (spec.reward) expect(() => compileRewardSpec(spec.reward!)).not.toThrow();
  });

  it('reads a YAML spec with short enum names and names unnamed stages', () => {
    const spec = runSpecFromYaml(`
name: demo
seed: 3
model: { tokenizer: bytes, device: cpu, config: { hidden_size: 64 } }
stages:
  - sft: { adapter: { kind: dora, rank: 8, use_rslora: true } }
  - name: rl
    grpo:
      group_size: 8
      advantage: rloo
      loss_aggregation: dr_grpo
      sampling: { temperature: 1.0, top_p: 0.95, max_new_tokens: 64 }
`);
    expect(spec.name).toBe('demo');
    expect(spec.stages.map((s) => s.name)).toEqual(['sft-0', 'rl']);
    expect(spec.stages[1].kind?.$case).toBe('grpo');
  });

  it('reads recompute on the training stages (the learner hands it to the engine)', () => {
    const spec = runSpecFromYaml(`
stages:
  - sft: { recompute: true }
  - grpo: { group_size: 2, recompute: true }
  - grpo: { group_size: 2 }
`);
    expect(spec.stages.map((s) => (s.kind?.$case === 'sft' || s.kind?.$case === 'grpo' ? s.kind.value.recompute : undefined))).toEqual([true, true, false]);
    expect(problems('stages:\n  - sft: { recompute: 3 }\n')).toEqual([expect.stringMatching(/^stages\[0\]\.sft\.recompute: /)]);
  });

  it('starts from one model: a checkpoint, a model directory or a config', () => {
    expect(problems('model: { path: models/qwen3 }\nstages: [{ eval: {} }]')).toEqual([]);
    expect(problems('model: { path: models/qwen3, checkpoint: base }\nstages: [{ eval: {} }]')).toEqual(['model: set one of checkpoint, path or config, not checkpoint and path']);
    expect(problems('model: { path: models/qwen3, config: { hidden_size: 64 } }\nstages: [{ eval: {} }]')).toEqual(['model: set one of checkpoint, path or config, not path and config']);
  });

  it('reads a multi-turn environment and reports what is wrong with one, with its path', () => {
    const spec = runSpecFromYaml(`
stages:
  - grpo:
      environment: { name: countdown, tools: [calculator], max_turns: 4, max_tokens: 256, step_timeout_ms: 2000, options: { must_use_all: false } }
`);
    const grpo = spec.stages[0].kind?.$case === 'grpo' ? spec.stages[0].kind.value : undefined;
    expect(grpo?.environment).toMatchObject({ name: 'countdown', tools: ['calculator'], maxTurns: 4, maxTokens: 256, stepTimeoutMs: 2000, options: { must_use_all: false } });
    // A user's module is checked when the learner reads it (inside the data roots); its tools here.
    expect(problems('stages: [{ grpo: { environment: { name: envs/mine.js, tools: [calculator] } } }]')).toEqual([]);
    expect(
      problems(`
stages:
  - grpo: { environment: { tools: [abacus] } }
  - grpo: { environment: { name: guess_number, options: { low: 9, high: 1 }, tool_format: xml } }
  - grpo: { environment: { name: envs/mine.js, source: "function reset() {}" } }
`),
    ).toEqual([
      "stages[0].grpo.environment.name: required (a built-in environment, or a user's .js module)",
      'stages[0].grpo.environment.tools[0]: unknown tool "abacus" (built-in: calculator)',
      'stages[1].grpo.environment.tool_format: expected one of hermes, compact, got "xml"',
      'stages[1].grpo.environment.options.high: (1) must not be below low (9)',
      'stages[2].grpo.environment.source: filled in by the learner from name; leave it out',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const [p] = problems('name: [unclosed\nstages: []\n');
    expect(p).toMatch(/line \d+/);
  });

  it('reports an alias without its anchor as a spec mistake (the fuzz test found it answered INTERNAL)', () => {
    expect(() => runSpecFromYaml('name: *nothing')).toThrow(SpecError);
    expect(() => runSpecFromYaml('name: *nothing')).toThrow('YAML: Unresolved alias (the anchor must be set before the alias): nothing');
  });

  it('reports every problem with its path', () => {
    expect(
      problems(`
stages:
  - name: a
    grpo: { group_size: 1, clip_eps_low: 1.5, ratio_level: word, importance_sampling_mode: token_clip, importance_sampling_cap: -1, top_entropy_quantile: 1.5, sampling: { top_p: 2 } }
  - name: a
    eval: {}
  - {}
`),
    ).toEqual([
      'stages[0].grpo.group_size: GRPO compares completions of one prompt, so it needs at least 2',
      'stages[0].grpo.clip_eps_low: must be in [0, 1)',
      'stages[0].grpo.ratio_level: must be "token" or "sequence"',
      'stages[0].grpo.importance_sampling_mode: must be one of "token_truncate", "token_mask", "sequence_truncate", "sequence_mask" (or empty: off)',
      'stages[0].grpo.importance_sampling_cap: must be > 0',
      'stages[0].grpo.top_entropy_quantile: must be in (0, 1]',
      'stages[0].grpo.sampling.top_p: must be in [0, 1]',
      'stages[1].name: "a" is used by an earlier stage',
      'stages[2]: set one of midtrain, sft, grpo or eval',
    ]);
  });

  it('refuses asynchronous sampling in a reproducible run', () => {
    expect(problems(`
reproducible: true
stages:
  - { name: a, grpo: { max_policy_lag: 1 } }
  - { name: b, grpo: { max_policy_lag: 0 } }
`)).toEqual(['stages[0].grpo.max_policy_lag: reproducible runs sample synchronously (0)']);
  });

  it('says which reward component stands for accuracy and format, one each', () => {
    const spec = runSpecFromYaml(`
reward:
  components:
    - { name: countdown, weight: 1, report_as: accuracy }
    - { name: format, weight: 0.5, report_as: format }
stages: [ { grpo: {} } ]
`);
    expect(reportedComponents(spec.reward)).toEqual({ accuracy: 'countdown', format: 'format' });
    expect(reportedComponents(runSpecFromYaml('stages: [ { grpo: {} } ]\n').reward)).toEqual({ accuracy: undefined, format: undefined });
    expect(
      problems(`
reward:
  components:
    - { name: accuracy, weight: 1, report_as: accuracy }
    - { name: countdown, weight: 1, report_as: accuracy }
    - { name: format, weight: 1, report_as: shape }
stages: [ { grpo: {} } ]
`),
    ).toEqual(['reward.components[2].report_as: expected one of accuracy, format, got "shape"']);
    expect(problems(`
reward:
  components:
    - { name: accuracy, weight: 1, report_as: accuracy }
    - { name: countdown, weight: 1, report_as: accuracy }
stages: [ { grpo: {} } ]
`)).toEqual(['reward.components[1].report_as: accuracy is reported by reward.components[0] already']);
  });

  it('refuses a spec without stages, and unknown fields', () => {
    expect(problems('name: x\n')).toEqual(['stages: a run needs at least one stage']);
    expect(problems('name: x\nstage: []\n')[0]).toMatch(/^stage: unknown field of RunSpec/);
  });

  it('reads a dataset wherever a stage takes prompts, and the chat settings of the model', () => {
    const spec = runSpecFromYaml(`
model: { tokenizer: models/qwen3, chat: { enable_thinking: false, system_prompt: Be brief. } }
stages:
  - sft: { data: { sources: [{ dataset: { path: gsm8k/main, preset: gsm8k } }] } }
  - grpo: { task: { dataset: { path: gsm8k/main, split: train, preset: gsm8k, skip_bad_rows: true, fields: { prompt: "{question} Answer in \\\\boxed{}." } } } }
  - eval: { eval: { task: { dataset: { path: math500, preset: math } } } }
`);
    expect(spec.model?.chat).toEqual({ enableThinking: false, systemPrompt: 'Be brief.' });
    const grpo = spec.stages[1].kind!.$case === 'grpo' ? spec.stages[1].kind!.value : undefined;
    expect(grpo?.task?.dataset).toEqual({ path: 'gsm8k/main', split: 'train', preset: 'gsm8k', skipBadRows: true, fields: { prompt: '{question} Answer in \\boxed{}.' } });
    // Unset, thinking is the template's choice.
    expect(runSpecFromYaml('stages: [{ eval: {} }]').model?.chat?.enableThinking).toBeUndefined();
  });

  it('reports what is wrong with a dataset, with its path', () => {
    expect(
      problems(`
stages:
  - midtrain: { mixture: { sources: [{ dataset: { path: d } }] } }
  - grpo: { task: { uri: a.jsonl, dataset: { preset: squad, split: "../x", fields: { question: q } } } }
  - eval: { eval: { task: { dataset: { path: d, skip_bad_rows: "yes" } } } }
`),
    ).toEqual([
      'stages[2].eval.eval.task.dataset.skip_bad_rows: expected true or false, got "yes"',
    ]);
    expect(
      problems(`
stages:
  - midtrain: { mixture: { sources: [{ dataset: { path: d } }] } }
  - grpo: { task: { uri: a.jsonl, dataset: { preset: squad, split: "../x", fields: { question: q } } } }
`),
    ).toEqual([
      'stages[0].midtrain.mixture.sources[0].dataset: mid-training reads documents (uri); a dataset gives prompts with answers (GRPO tasks, evaluation, SFT)',
      'stages[1].grpo.task: set uri or dataset, not both',
      'stages[1].grpo.task.dataset.path: required (a .parquet or .jsonl file, or a directory of them)',
      'stages[1].grpo.task.dataset.preset: unknown preset "squad" (known: gsm8k, math, prompt_answer)',
      'stages[1].grpo.task.dataset.split: must be a name like "train" or "test"',
      'stages[1].grpo.task.dataset.fields.question: unknown field (known: prompt, answer, response)',
    ]);
  });
});
