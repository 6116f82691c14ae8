// The mixture study end to end at a size CI affords: examples/study-midtrain.yaml as it is but
// for its sizes, through `temper run --json --report` and the four services (its own local
// stack). Every branch (five mixtures, two replicates each) is decayed from the one stable
// checkpoint, evaluated after mid-training, SFT and along GRPO; the report ranks the mixtures.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { freePort } from '@temper/bus';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'apps', 'cli', 'dist', 'main.js');

/** examples/study-midtrain.yaml as it is, but for its sizes (the "half" branches keep half the decay). */
function shrunkExample(): string {
  const spec = parse(fs.readFileSync(path.join(repo, 'examples', 'study-midtrain.yaml'), 'utf8'));
  spec.model.config = { ...spec.model.config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 };
  spec.eval = { ...spec.eval, num_prompts: 4, pass_k: 0, sampling: { max_new_tokens: 12 } };
  const [midtrain, , sft, , grpo] = spec.stages;
  Object.assign(midtrain.midtrain, { seq_len: 32, batch_size: 2, stable_tokens: 128, schedule: { warmup_steps: 1 } });
  for (const b of midtrain.midtrain.branches) b.tokens = b.name.startsWith('half') ? 64 : 128;
  Object.assign(sft.sft, { num_examples: 4, batch_size: 4, epochs: 1 });
  Object.assign(grpo.grpo, { steps: 2, eval_every: 1, prompts_per_step: 1, group_size: 2, dynamic_sampling: false, save_every: 0, sampling: { temperature: 1, top_p: 1, max_new_tokens: 12 } });
  return stringify(spec);
}

interface Summary {
  state: string;
  eval: { stage: string; branch: string; step: number; accuracy: number }[];
  history: { stage: string; branch: string; step: number; kind: string; values: Record<string, number> }[];
}

describe('the mixture study (examples/study-midtrain.yaml) at CI size', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-study-midtrain-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('decays, fine-tunes, trains and evaluates every branch, and ranks the mixtures', async () => {
    fs.writeFileSync(path.join(dir, 'study.yaml'), shrunkExample());
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPER_LEARNER_ADDR: `127.0.0.1:${await freePort()}`, TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), TEMPER_ENGINE_THREADS: '1' };
    delete env.NATS_URL;
    const { stdout } = await run(process.execPath, [cli, 'run', 'study.yaml', '--json', '--report', 'report.html'], { cwd: dir, env, maxBuffer: 64 << 20 });
    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as Summary;
    expect(summary.state).toBe('succeeded');

    const mixtures = ['web-math', 'math-qa', 'math-qa-instr', 'long-cot', 'half'];
    const branches = mixtures.flatMap((m) => [`${m}_1`, `${m}_2`]);
    for (const branch of branches) {
      const evals = summary.eval.filter((e) => e.branch === branch).map((e) => `${e.stage} ${e.step}`);
      // 2 stable steps (64 tokens a step), then 2 decay steps (1 for half), SFT's 1 step, GRPO at 1 and 2.
      const decayed = 2 + (branch.startsWith('half') ? 1 : 2);
      expect({ branch, evals }).toEqual({ branch, evals: [`midtrain ${decayed}`, 'sft 1', 'grpo 1', 'grpo 2'] });
    }
    // Replicates decay on their own data: their losses differ though the spec is the same.
    const decayLoss = (branch: string) => summary.history.filter((h) => h.stage === 'midtrain' && h.branch === branch && h.kind === '').map((h) => h.values.loss);
    expect(decayLoss('math-qa_1')).not.toEqual(decayLoss('math-qa_2'));

    const report = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    const ranking = report.slice(report.indexOf('<table class="ranking">'), report.indexOf('</table>', report.indexOf('<table class="ranking">')));
    const ranked = [...ranking.matchAll(/<tr><td>(\d)<\/td><th>([^<]+)<\/th><td>2<\/td>/g)].map((m) => m[2]);
    expect(ranked.sort()).toEqual([...mixtures].sort());
    for (const branch of branches) expect(report).toContain(`<th>${branch}</th>`);
  }, 600000);
});
