// The domain study end to end at a size CI affords: examples/study-domain.yaml as it is but for
// its sizes, through `temper run --json --report` and the four services as processes (its own
// local stack). Mid-training, SFT with DoRA + rsLoRA on worked multiple-choice examples, GRPO
// with the four-component reward (accuracy, format, reasoning, choice_guard), evaluations; every
// component and the scorer's flags reported per step, and the report's components section.
// Then `temper report <run-id>` rebuilds the same report from what the learner kept of the run.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { LocalStack, startLocalStack } from '../apps/cli/src/local-stack';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'apps', 'cli', 'dist', 'main.js');

/** examples/study-domain.yaml as it is, but for its sizes. */
function shrunkExample(): string {
  const spec = parse(fs.readFileSync(path.join(repo, 'examples', 'study-domain.yaml'), 'utf8'));
  spec.model.config = { ...spec.model.config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1 };
  spec.eval = { ...spec.eval, num_prompts: 8, pass_k: 2, sampling: { max_new_tokens: 24 } };
  const [midtrain, , sft, , grpo] = spec.stages;
  Object.assign(midtrain.midtrain, { seq_len: 64, batch_size: 4, stable_tokens: 1024, schedule: { warmup_steps: 1 } });
  Object.assign(sft.sft, { num_examples: 8, batch_size: 4, epochs: 1, max_seq_len: 160 });
  Object.assign(grpo.grpo, { steps: 4, eval_every: 2, prompts_per_step: 2, group_size: 4, dynamic_sampling: false, save_every: 2, sampling: { temperature: 1, top_p: 1, max_new_tokens: 24 } });
  return stringify(spec);
}

interface Summary {
  run_id: string;
  state: string;
  eval: { stage: string; branch: string; step: number; accuracy: number; format_rate: number }[];
  history: { stage: string; step: number; kind: string; values: Record<string, number> }[];
}

describe('the domain study (examples/study-domain.yaml) at CI size', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-study-domain-'));
  let stack: LocalStack | undefined;
  let summary: Summary;
  afterAll(async () => {
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const temper = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [cli, ...args, '--endpoint', stack!.address('learner'), '--token', stack!.clientAuth.token], { cwd: dir, maxBuffer: 64 << 20 });
    const lines = stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]) as Summary;
  };

  it('runs through the four services and reports every reward component per step', async () => {
    fs.writeFileSync(path.join(dir, 'study.yaml'), shrunkExample());
    stack = await startLocalStack({ logs: { dir: path.join(dir, 'logs') }, env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), TEMPER_ENGINE_THREADS: '1' } });
    summary = await temper('run', 'study.yaml', '--json', '--report', 'report.html');
    expect(summary.state).toBe('succeeded');
    expect(summary.eval.map((e) => `${e.stage} ${e.step}`)).toEqual(['midtrain 4', 'sft 2', 'grpo 2', 'grpo 4']);

    const grpo = summary.history.filter((h) => h.stage === 'grpo' && h.kind === '');
    expect(grpo.map((h) => h.step)).toEqual([1, 2, 3, 4]);
    for (const h of grpo) {
      for (const name of ['accuracy', 'format', 'reasoning', 'choice_guard']) expect(Object.keys(h.values)).toContain(`reward/${name}`);
      // The components as the spec weighs them make the total.
      const v = h.values;
      expect(v['reward/total']).toBeCloseTo(v['reward/accuracy'] + 0.25 * v['reward/format'] + 0.25 * v['reward/reasoning'] + 1.5 * v['reward/choice_guard'], 6);
      expect(v['reward/choice_guard']).toBeLessThanOrEqual(0);
      expect(v['reward/choice_guard']).toBeGreaterThanOrEqual(-1);
      for (const [k, share] of Object.entries(v).filter(([key]) => key.startsWith('flag/'))) {
        expect({ k, share: share >= 0 && share <= 1 }).toEqual({ k, share: true });
      }
    }
    // A tiny model's completions are raised flags (no answer, bad format) somewhere in four steps.
    expect(grpo.some((h) => Object.keys(h.values).some((k) => k.startsWith('flag/')))).toBe(true);

    const report = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(report).toContain('<h2>Reward components</h2>');
    for (const name of ['accuracy', 'format', 'reasoning', 'choice_guard']) expect(report).toContain(`${name} (component): grpo`);
    expect(report).toContain('Share of completions flagged: grpo');
  }, 300000);

  it('rebuilds the same report from the learner with temper report <run-id>', async () => {
    const rebuilt = await temper('report', summary.run_id, '--out', 'rebuilt.html', '--json');
    expect(rebuilt.history).toEqual(summary.history);
    expect(rebuilt.state).toBe('succeeded');
    // The same document but for the time it was written.
    const written = (file: string) => fs.readFileSync(path.join(dir, file), 'utf8').replace(/written \S+/, 'written …');
    expect(written('rebuilt.html')).toBe(written('report.html'));
    // A run the learner does not know is named in the error.
    await expect(temper('report', 'no-such-run', '--out', 'none.html')).rejects.toThrow(/temper: no run "no-such-run"/);
    expect(fs.existsSync(path.join(dir, 'none.html'))).toBe(false);
  }, 60000);
});
