// Held-out evaluation of a policy on a task: greedy pass@1 (accuracy), pass@k with sampling,
// format adherence and mean response length. Built-in tasks are judged by @temper/data's
// checkers on their held-out split (never seen in training); a dataset (its "test" split unless
// it names one) or a file by its reference answer, the way the accuracy reward judges it (the
// final answer after the reasoning, in <answer> or \boxed{}, compared by value). Format is the
// format reward's verdict. Prompts go through the chat template as in GRPO.
import { checkCompletion, taskMessages, TaskName, taskNames, taskStream } from '@temper/data';
import type { Model } from '@temper/native';
import { ChatSpec, DataSource, EvalSpec, SamplingParams } from '@temper/proto';
import { compileRewardSpec } from '@temper/rewards';
import type { Tokenizer } from '@temper/tokenizers';
import { openPrompts, renderPrompt } from '../prompts';

// The default reward (accuracy and format): what evaluation calls right and well formed.
const judge = compileRewardSpec();

export interface EvalSettings {
  task: DataSource;
  numPrompts: number;
  /** 0: no sampled pass@k. */
  passK: number;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
  /** How prompts are rendered (the run's model.chat). */
  chat?: ChatSpec;
}

/**
 * An EvalSpec with defaults: the task falls back to `task` (e.g. the GRPO stage's; its dataset's
 * "test" split, whichever split it trains on), 32 prompts, pass@4.
 */
export function evalSettings(spec: EvalSpec | undefined, fallbackTask?: DataSource, seed = 0, chat?: ChatSpec): EvalSettings {
  const s = spec?.sampling ?? SamplingParams.fromPartial({});
  const fallback = fallbackTask?.dataset ? { ...fallbackTask, dataset: { ...fallbackTask.dataset, split: '' } } : fallbackTask;
  return {
    chat,
    task: spec?.task ?? fallback ?? DataSource.fromPartial({ name: 'arithmetic', uri: 'builtin:arithmetic', fields: { difficulty: '1' } }),
    numPrompts: spec?.numPrompts || 32,
    passK: spec === undefined ? 4 : spec.passK,
    temperature: s.temperature || 1,
    topP: s.topP || 1,
    maxNewTokens: s.maxNewTokens || 48,
    seed: Number(s.seed) || seed,
  };
}

export interface EvalItem {
  prompt: string;
  /** The reference answer (for a built-in task, its canonical one). */
  answer: string;
  /** The problem's canonical form (built-in tasks: what decides its split). */
  canonical?: string;
  /** Whether a completion answers the item correctly. */
  correct(completion: string): boolean;
}

/**
 * Up to `count` distinct held-out items. Built-in tasks: the eval split at the source's
 * difficulty (fields.difficulty, default 1); the easiest levels hold only a few dozen distinct
 * problems, so fewer than asked may come back. Datasets and files: the first `count` rows.
 */
export async function evalItems(task: DataSource, count: number, seed: number): Promise<EvalItem[]> {
  if (!task.uri.startsWith('builtin:')) {
    const prompts = openPrompts(task, seed, 0, 'eval');
    const out: EvalItem[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const p = await prompts.next();
      // Back at the first row: the split holds fewer than `count`.
      if (seen.has(p.prompt)) break;
      seen.add(p.prompt);
      const reference = p.reference.trim();
      out.push({ prompt: p.prompt, answer: reference, correct: (c) => judge.score({ completion: c, reference }).components.accuracy === 1 });
    }
    return out;
  }
  const name = task.uri.slice('builtin:'.length);
  if (!taskNames.includes(name as TaskName)) throw new Error(`${task.uri}: unknown built-in task (known: ${taskNames.join(', ')})`);
  const difficulty = (task.fields.difficulty ?? '1').split(',').map((d) => Number(d.trim()));
  const out: EvalItem[] = [];
  const seen = new Set<string>();
  let sinceNew = 0;
  for (const item of taskStream({ task: name as TaskName, split: 'eval', difficulty, seed: `eval:${seed}` })) {
    if (out.length >= count || sinceNew > 2000) break;
    if (seen.has(item.canonical)) {
      sinceNew++;
      continue;
    }
    sinceNew = 0;
    seen.add(item.canonical);
    out.push({ prompt: taskMessages(item)[0].content, answer: item.answer, canonical: item.canonical, correct: (c) => checkCompletion(item, c) });
  }
  return out;
}

export interface EvalResult {
  /** Greedy pass@1 on the held-out prompts. */
  accuracy: number;
  /** Share of greedy completions exactly in <think>…</think><answer>…</answer> form. */
  format_rate: number;
  /** Mean greedy completion length in tokens (a closing EOS included). */
  response_length: number;
  /** Share of prompts with at least one correct answer among k samples (when passK > 0). */
  pass_at_k?: number;
  /** Mean correctness of the k samples (sampled pass@1). */
  sample_accuracy?: number;
  /** Share of sampled completions well formed. */
  sample_format_rate?: number;
  k?: number;
  prompts: number;
  seconds: number;
}

/** Evaluates a model; the items are fixed by the task and seed, so evaluations compare. */
export async function evaluateModel(model: Model, tokenizer: Tokenizer, settings: EvalSettings): Promise<EvalResult> {
  const t0 = performance.now();
  const items = await evalItems(settings.task, settings.numPrompts, settings.seed);
  if (items.length === 0) throw new Error(`evaluation: no held-out items for ${settings.task.uri || settings.task.dataset?.path}`);
  const rendered = items.map((it) => renderPrompt(tokenizer, it.prompt, settings.chat));
  const prompts = rendered.map((text) => tokenizer.encode(text));
  const stopTokens = [...tokenizer.stopTokenIds];
  const text = (c: { prompt: number; tokens: Int32Array; finishReason: 'stop' | 'length' }): EvalCompletion => ({
    prompt: c.prompt,
    promptText: rendered[c.prompt],
    text: tokenizer.decode(c.tokens, { skipSpecialTokens: true }),
    finishReason: c.finishReason,
    tokens: c.tokens.length,
  });
  const greedy = await model.generate({ prompts, maxNewTokens: settings.maxNewTokens, temperature: 0, stopTokens, seed: settings.seed });
  let sampled: EvalCompletion[] | undefined;
  if (settings.passK > 0) {
    const out = await model.generate({ prompts, maxNewTokens: settings.maxNewTokens, temperature: settings.temperature, topP: settings.topP, stopTokens, seed: settings.seed + 1, n: settings.passK });
    sampled = out.map(text);
  }
  const result = scoreCompletions(items, greedy.map(text), sampled, settings.passK);
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

export interface EvalCompletion {
  /** Index of the item. */
  prompt: number;
  /** The prompt as rendered (a template may open or close the reasoning block in it). */
  promptText?: string;
  text: string;
  finishReason: 'stop' | 'length';
  tokens: number;
}

/** The metrics of greedy completions (one per item) and, for pass@k, k sampled ones per item. */
export function scoreCompletions(items: EvalItem[], greedy: EvalCompletion[], sampled: EvalCompletion[] | undefined, k: number): EvalResult {
  const n = items.length;
  let correct = 0;
  let formatted = 0;
  let length = 0;
  for (const c of greedy) {
    if (items[c.prompt].correct(c.text)) correct++;
    if (wellFormed(c)) formatted++;
    length += c.tokens;
  }
  const result: EvalResult = { accuracy: correct / n, format_rate: formatted / n, response_length: length / n, prompts: n, seconds: 0 };
  if (sampled && k > 0) {
    const solved = new Array<boolean>(n).fill(false);
    let right = 0;
    let wf = 0;
    for (const c of sampled) {
      if (items[c.prompt].correct(c.text)) {
        solved[c.prompt] = true;
        right++;
      }
      if (wellFormed(c)) wf++;
    }
    result.pass_at_k = solved.filter(Boolean).length / n;
    result.sample_accuracy = right / sampled.length;
    result.sample_format_rate = wf / sampled.length;
    result.k = k;
  }
  return result;
}

// Well formed: the format reward's full marks, and the completion ended by itself.
function wellFormed(c: EvalCompletion): boolean {
  return c.finishReason === 'stop' && judge.score({ completion: c.text, reference: '', prompt: c.promptText }).components.format === 1;
}

/** An EvalResult as metric values. */
export function evalMetrics(r: EvalResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(r)) if (typeof v === 'number') out[key] = v;
  return out;
}
