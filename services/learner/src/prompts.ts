// Where a stage's prompts come from: a built-in task stream (`builtin:<task>`, difficulty in
// the source's fields, e.g. { difficulty: "1,2" }) or a JSONL file of prompts with reference
// answers. Streams are positioned by a cursor so a resumed run continues where it stopped.
import { taskStream, TaskItem, TaskName, taskNames } from '@temper/data';
import type { DataSource } from '@temper/proto';
import * as fs from 'node:fs';

export interface PromptItem {
  prompt: string;
  reference: string;
}

export interface PromptStream {
  /** Items handed out so far (the position to resume from). */
  readonly cursor: number;
  next(): PromptItem;
}

export function openPrompts(source: DataSource, seed: number, cursor = 0, split: 'train' | 'eval' = 'train'): PromptStream {
  const stream = source.uri.startsWith('builtin:') ? builtinStream(source, seed, split) : jsonlStream(source);
  for (let i = 0; i < cursor; i++) stream.next();
  let position = cursor;
  return {
    get cursor() {
      return position;
    },
    next() {
      position++;
      return stream.next();
    },
  };
}

function builtinStream(source: DataSource, seed: number, split: 'train' | 'eval'): { next(): PromptItem } {
  const task = source.uri.slice('builtin:'.length);
  if (!taskNames.includes(task as TaskName)) throw new Error(`${source.uri}: unknown built-in task (known: ${taskNames.join(', ')})`);
  const difficulty = (source.fields.difficulty ?? '1').split(',').map((d) => Number(d.trim()));
  const items = taskStream({ task: task as TaskName, split, difficulty, seed });
  return {
    next: () => {
      const item = items.next().value as TaskItem;
      return { prompt: item.prompt, reference: item.answer };
    },
  };
}

// One JSON object per line; `fields` maps our names to the file's ({ prompt: "question", reference: "answer" }).
function jsonlStream(source: DataSource): { next(): PromptItem } {
  const promptField = source.fields.prompt ?? 'prompt';
  const referenceField = source.fields.reference ?? 'answer';
  let text: string;
  try {
    text = fs.readFileSync(source.uri, 'utf8');
  } catch (err) {
    throw new Error(`cannot read prompts from ${source.uri}: ${(err as Error).message}`);
  }
  const items: PromptItem[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new Error(`${source.uri}:${i + 1}: not valid JSON (${(err as Error).message})`);
    }
    const prompt = row[promptField];
    const reference = row[referenceField];
    if (typeof prompt !== 'string') throw new Error(`${source.uri}:${i + 1}: field "${promptField}" must be a string`);
    if (typeof reference !== 'string' && typeof reference !== 'number') throw new Error(`${source.uri}:${i + 1}: field "${referenceField}" must be a string or number`);
    items.push({ prompt, reference: String(reference) });
  });
  if (items.length === 0) throw new Error(`${source.uri}: no prompts`);
  let i = 0;
  return { next: () => items[i++ % items.length] };
}
