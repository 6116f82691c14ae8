// bench:model: what a released model's shape costs on this machine before its real weights are at
// hand: a directory made by `temper init-model` (random weights, the full vocabulary), then in
// this process its load time and resident memory, generation tokens/s, one LoRA SFT step and one
// GRPO learner step (full weights, as GRPO trains after SFT is merged), each with the memory it
// left resident and the peak so far, and the CPU time it took (the wall time on a busy machine
// says little). One JSON object with --json.
//
//   npm run bench:model -- [--like qwen3-0.6b] [--threads N] [--prompts 2] [--group 2]
//                          [--prompt-tokens 128] [--new-tokens 128] [--sft-batch 4] [--sft-seq 256] [--json]
import { buildTrainingBatch, ScoredPromptGroup } from '@temper/algorithms';
import { Model } from '@temper/native';
import { grpoStep } from '@temper/training';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    like: { type: 'string', default: 'qwen3-0.6b' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    prompts: { type: 'string', default: '2' },
    group: { type: 'string', default: '2' },
    'prompt-tokens': { type: 'string', default: '128' },
    'new-tokens': { type: 'string', default: '128' },
    'sft-batch': { type: 'string', default: '4' },
    'sft-seq': { type: 'string', default: '256' },
    json: { type: 'boolean', default: false },
  },
});
const threads = Number(o.threads);
const prompts = Number(o.prompts);
const group = Number(o.group);
const promptTokens = Number(o['prompt-tokens']);
const newTokens = Number(o['new-tokens']);
const sftBatch = Number(o['sft-batch']);
const sftSeq = Number(o['sft-seq']);

const gib = (bytes: number) => Math.round((bytes / 2 ** 30) * 100) / 100;
/** Resident memory now and the process's peak so far (VmHWM), in GiB. */
function memory(): { rss_gib: number; peak_rss_gib: number } {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return { rss_gib: gib(process.memoryUsage().rss), peak_rss_gib: hwm ? gib(Number(hwm[1]) * 1024) : NaN };
}
const seconds = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;
// CPU seconds of this process since `from`: on a machine shared with other work, cpu_s / threads
// is about what the wall time would be on an idle one.
const cpuSeconds = (from: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(from);
  return Math.round((u.user + u.system) / 1e4) / 100;
};
const log = (line: string) => o.json || process.stderr.write(`${line}\n`);

/** Token ids below the special tokens, the same for the same seed. */
function randomTokens(n: number, vocab: number, seed: number): Int32Array {
  let x = seed * 2654435761;
  return Int32Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % vocab;
  });
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-bench-model-'));
  const report: Record<string, unknown> = { like: o.like, threads, cpus: os.availableParallelism(), load_average: os.loadavg()[0] };
  try {
    // Made by the command itself, in its own process: this one's memory is the loaded model's alone.
    const dir = path.join(work, 'model');
    let t0 = performance.now();
    const made = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, '..', 'main.js'), 'init-model', '--like', o.like!, '--out', dir, '--json'], { encoding: 'utf8' }));
    report.init_model = { seconds: seconds(t0), parameters: made.parameters, bytes_on_disk: made.bytes, dtype: 'bf16' };
    const vocab = made.config.vocab_size as number;
    const textVocab = Math.min(vocab, 151643); // below Qwen's special tokens
    log(`init-model ${o.like}: ${(made.parameters / 1e6).toFixed(0)}M parameters in ${seconds(t0)} s`);

    t0 = performance.now();
    let cpu = process.cpuUsage();
    const model = await Model.load(dir, { threads });
    report.load = { seconds: seconds(t0), cpu_s: cpuSeconds(cpu), ...memory() };
    log(`load: ${JSON.stringify(report.load)}`);

    // Generation: prompts x group completions of newTokens each (no stop token), sampled.
    const promptIds = Array.from({ length: prompts }, (_, i) => randomTokens(promptTokens, textVocab, i + 1));
    t0 = performance.now();
    cpu = process.cpuUsage();
    const completions = await model.generate({ prompts: promptIds, maxNewTokens: newTokens, temperature: 1, topP: 1, seed: 1, n: group });
    const generated = completions.reduce((n, c) => n + c.tokens.length, 0);
    const genS = (performance.now() - t0) / 1000;
    report.generate = { completions: completions.length, prompt_tokens: promptTokens, new_tokens: generated, seconds: Math.round(genS * 100) / 100, cpu_s: cpuSeconds(cpu), tokens_per_s: Math.round((generated / genS) * 10) / 10, ...memory() };
    log(`generate: ${JSON.stringify(report.generate)}`);

    // One LoRA SFT step (r 16 on every projection): cross-entropy on every token of sftBatch x sftSeq.
    await model.addAdapters({ r: 16, alpha: 32, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], seed: 1 });
    const sftTokens = randomTokens(sftBatch * sftSeq, textVocab, 9);
    const dlogprob = new Float32Array(sftBatch * (sftSeq - 1)).fill(-1 / (sftBatch * (sftSeq - 1)));
    const sftSteps: number[] = [];
    for (let i = 0; i < 2; i++) {
      t0 = performance.now();
      cpu = process.cpuUsage();
      await model.zeroGrad();
      await model.logprobs(sftTokens, { batch: sftBatch, seqLen: sftSeq });
      await model.backward(dlogprob);
      await model.step({ lr: 1e-4 });
      sftSteps.push(seconds(t0));
    }
    report.lora_sft_step = { batch: sftBatch, seq_len: sftSeq, first_s: sftSteps[0], seconds: sftSteps[1], cpu_s: cpuSeconds(cpu), tokens_per_s: Math.round(((sftBatch * sftSeq) / sftSteps[1]) * 10) / 10, ...memory() };
    log(`LoRA SFT step: ${JSON.stringify(report.lora_sft_step)}`);

    // One GRPO learner step on the generated groups: every weight trains (AdamW's moments appear).
    await model.mergeAdapters();
    const groups: ScoredPromptGroup[] = promptIds.map((p, i) => {
      const mine = completions.filter((c) => c.prompt === i);
      return { promptIds: p, completions: mine.map((c) => ({ tokenIds: c.tokens, logprobs: c.logprobs, finishReason: c.finishReason })), rewards: mine.map((_, j) => j % 2) };
    });
    const batch = buildTrainingBatch(groups, { estimator: 'grpo', filterOverlong: false, padId: 0 });
    const loss = { epsLow: 0.2, epsHigh: 0.28, beta: 0, klEstimator: 'k3' as const, level: 'token' as const, aggregation: 'grpo' as const, maxCompletionLength: newTokens, numIterations: 1, microBatchSize: batch.n };
    const grpoSteps: number[] = [];
    for (let i = 0; i < 2; i++) {
      t0 = performance.now();
      cpu = process.cpuUsage();
      await grpoStep(model, batch, loss, { lr: 1e-6, maxGradNorm: 1 });
      grpoSteps.push(seconds(t0));
    }
    report.grpo_step = { sequences: batch.n, seq_len: batch.seqLen, completion_tokens: batch.maskedTokens, first_s: grpoSteps[0], seconds: grpoSteps[1], cpu_s: cpuSeconds(cpu), ...memory() };
    log(`GRPO step: ${JSON.stringify(report.grpo_step)}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench:model: ${(err as Error).message}\n`);
  process.exit(1);
});
