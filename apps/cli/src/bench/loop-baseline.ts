// The same GRPO steps as bench:loop's run, in one process with no services: sample with the
// engine, score with the reward library, train, save the weights. What a step costs when
// nothing crosses a process boundary; the distributed step's excess over it is the services'
// overhead (messaging, serialization, waiting).
import { buildTrainingBatch, ScoredPromptGroup } from '@temper/algorithms';
import { taskStream } from '@temper/data';
import { HfConfig, Model } from '@temper/native';
import { compileRewardSpec } from '@temper/rewards';
import { createTokenizer } from '@temper/tokenizers';
import { grpoStep } from '@temper/training';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface BaselineShape {
  config: Record<string, unknown>;
  steps: number;
  /** First steps left out of the figures: loading, and the code paths still warming up (JIT). */
  warmupSteps: number;
  promptsPerStep: number;
  groupSize: number;
  maxNewTokens: number;
  lr: number;
  difficulty: number[];
}

/** Seconds per step, and its parts, for the steps after the warm-up ones. */
export async function inProcessStepSeconds(s: BaselineShape): Promise<{ step_s: number; generate_s: number; score_s: number; learn_s: number; save_s: number }> {
  const tokenizer = createTokenizer({ kind: 'byte' });
  const model = await Model.create({ ...s.config, vocab_size: tokenizer.vocabSize } as HfConfig, { seed: 1, threads: os.availableParallelism() });
  const rewards = compileRewardSpec({ components: [{ name: 'accuracy', weight: 1 }, { name: 'format', weight: 0.5, options: { partialCredit: 0.5 } }] });
  const items = taskStream({ task: 'arithmetic', split: 'train', difficulty: s.difficulty, seed: 1 });
  const eos = tokenizer.specialTokens.eos!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-bench-baseline-'));
  const totals = { step_s: 0, generate_s: 0, score_s: 0, learn_s: 0, save_s: 0 };
  try {
    for (let step = 1; step <= s.steps; step++) {
      const t0 = performance.now();
      const batchItems = Array.from({ length: s.promptsPerStep }, () => items.next().value!);
      const prompts = batchItems.map((it) => tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: it.prompt }], { addGenerationPrompt: true })));
      const completions = await model.generate({ prompts, maxNewTokens: s.maxNewTokens, temperature: 1, topP: 1, stopTokens: [eos], seed: step, n: s.groupSize });
      const t1 = performance.now();
      const groups: ScoredPromptGroup[] = batchItems.map((it, p) => {
        const mine = completions.filter((c) => c.prompt === p);
        return {
          promptIds: prompts[p],
          completions: mine.map((c) => ({ tokenIds: c.tokens, logprobs: c.logprobs, finishReason: c.finishReason })),
          rewards: mine.map((c) => rewards.score({ completion: tokenizer.decode(c.tokens), reference: it.answer, completionTokens: c.tokens.length, maxTokens: s.maxNewTokens }).total),
        };
      });
      const t2 = performance.now();
      const batch = buildTrainingBatch(groups, { estimator: 'grpo', filterOverlong: false, padId: tokenizer.specialTokens.pad ?? 0 });
      if (batch.maskedTokens > 0) {
        await grpoStep(model, batch, { epsLow: 0.2, epsHigh: 0.28, beta: 0, klEstimator: 'k3', level: 'token', aggregation: 'grpo', maxCompletionLength: s.maxNewTokens, numIterations: 1, microBatchSize: 16 }, { lr: s.lr, maxGradNorm: 1 });
      }
      const t3 = performance.now();
      await model.save(dir);
      const t4 = performance.now();
      if (step <= s.warmupSteps) continue;
      totals.step_s += (t4 - t0) / 1000;
      totals.generate_s += (t1 - t0) / 1000;
      totals.score_s += (t2 - t1) / 1000;
      totals.learn_s += (t3 - t2) / 1000;
      totals.save_s += (t4 - t3) / 1000;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const n = Math.max(1, s.steps - s.warmupSteps);
  return { step_s: totals.step_s / n, generate_s: totals.generate_s / n, score_s: totals.score_s / n, learn_s: totals.learn_s / n, save_s: totals.save_s / n };
}
