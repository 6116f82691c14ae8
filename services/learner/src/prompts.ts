// Where a stage's prompts come from, and how a prompt is put to the model. Sources: a built-in
// task stream (`builtin:<task>`, difficulty in the source's fields, e.g. { difficulty: "1,2" }),
// a user's dataset (`dataset:` Parquet or JSONL, see @temper/data's openDataset), or a file
// named by `uri` (a .jsonl or .parquet file read the same way, its columns given by
// fields.prompt and fields.reference). Streams are positioned by a cursor so a resumed run
// continues where it stopped.
import { DatasetOptions, openDataset, taskStream, TaskItem, TaskName, taskNames } from '@temper/data';
import type { ChatSpec, DataSource } from '@temper/proto';
import type { ChatMessage, Tokenizer } from '@temper/tokenizers';

export interface PromptItem {
  prompt: string;
  reference: string;
}

export interface PromptStream {
  /** Rows (or task items) taken so far: the position to resume from. */
  readonly cursor: number;
  /** Dataset rows skipped as bad so far (skip_bad_rows). */
  readonly skipped: number;
  next(): Promise<PromptItem>;
}

/**
 * The prompts of `source` from `cursor` on. `split` 'eval' means held-out items: a built-in
 * task's eval split, a dataset's "test" split unless the source names one.
 */
export function openPrompts(source: DataSource, seed: number, cursor = 0, split: 'train' | 'eval' = 'train', onSkip?: DatasetOptions['onSkip']): PromptStream {
  if (source.dataset) return datasetPrompts({ ...datasetOptions(source), split: source.dataset.split || (split === 'eval' ? 'test' : 'train'), onSkip }, cursor);
  if (!source.uri.startsWith('builtin:')) return datasetPrompts({ path: source.uri, fields: { prompt: source.fields.prompt ?? 'prompt', answer: source.fields.reference ?? 'answer' }, onSkip }, cursor);
  const items = builtinStream(source, seed, split);
  for (let i = 0; i < cursor; i++) items.next();
  let position = cursor;
  return {
    get cursor() {
      return position;
    },
    skipped: 0,
    async next() {
      position++;
      const item = items.next().value as TaskItem;
      return { prompt: item.prompt, reference: item.answer };
    },
  };
}

/** A source's dataset as @temper/data reads it. */
export function datasetOptions(source: DataSource): DatasetOptions {
  const d = source.dataset!;
  return { path: d.path, split: d.split, preset: d.preset, fields: { ...d.fields }, skipBadRows: d.skipBadRows };
}

function datasetPrompts(options: DatasetOptions, cursor: number): PromptStream {
  const rows = openDataset(options, cursor);
  return {
    get cursor() {
      return rows.cursor;
    },
    get skipped() {
      return rows.skipped;
    },
    async next() {
      const item = await rows.next();
      return { prompt: item.prompt, reference: item.answer };
    },
  };
}

function builtinStream(source: DataSource, seed: number, split: 'train' | 'eval'): Generator<TaskItem> {
  const task = source.uri.slice('builtin:'.length);
  if (!taskNames.includes(task as TaskName)) throw new Error(`${source.uri}: unknown built-in task (known: ${taskNames.join(', ')})`);
  const difficulty = (source.fields.difficulty ?? '1').split(',').map((d) => Number(d.trim()));
  return taskStream({ task: task as TaskName, split, difficulty, seed });
}

/** The conversation a prompt becomes: the run's system message, if any, then the prompt as the user's turn. */
export function promptMessages(prompt: string, chat?: ChatSpec): ChatMessage[] {
  return [...(chat?.systemPrompt ? [{ role: 'system', content: chat.systemPrompt }] : []), { role: 'user', content: prompt }];
}

/** A prompt as the model sees it: through the chat template, with its generation prompt (thinking on or off as the run says). */
export function renderPrompt(tokenizer: Tokenizer, prompt: string, chat?: ChatSpec): string {
  return tokenizer.applyChatTemplate(promptMessages(prompt, chat), { addGenerationPrompt: true, enableThinking: chat?.enableThinking });
}
