// From a run spec's data source ({ name, uri, weight, fields }, the shape of the proto's
// DataSource) to something to read: documents for mid-training mixtures, prompt/response
// pairs for SFT. URIs are "builtin:<name>" or a path to a .jsonl or text file; `fields`
// carries the options (field mapping for JSONL, difficulty and tasks for built-ins).
import * as path from 'node:path';
import { loadJsonlDocuments, loadJsonlPairs, loadTextDocuments, type TextLoaderOptions } from '../loaders';
import type { MixtureComponent } from '../mixture';
import { taskGenerator, taskNames, taskStream } from '../tasks/generate';
import type { TaskName } from '../tasks/types';
import { instructionDocuments, instructionPairs } from './instructions';
import { qaDocuments, qaPairs } from './qa';
import { renderQa, type Document, type DocumentSource, type PairRenderer, type PromptResponse } from './types';
import { webMathDocuments } from './web-math';

export interface DataSourceSpec {
  name: string;
  uri: string;
  weight?: number;
  fields?: Record<string, string>;
}

export interface OpenOptions {
  seed: number | string;
  /** Relative file paths are taken from here (e.g. the run spec's directory). */
  baseDir?: string;
  /** How a prompt/response pair becomes a document; default renderQa. */
  render?: PairRenderer;
}

/** The built-in corpora a source may name as builtin:<name>. */
export const builtinCorpora = ['web-math', 'qa-short-cot', 'qa-long-cot', 'instructions'] as const;

function where(spec: DataSourceSpec): string {
  return `data source "${spec.name}" (${spec.uri})`;
}

function listField(spec: DataSourceSpec, key: string): string[] | undefined {
  const v = spec.fields?.[key];
  return v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function difficultyField(spec: DataSourceSpec): number[] | undefined {
  const list = listField(spec, 'difficulty');
  if (list === undefined) return undefined;
  const nums = list.map(Number);
  if (nums.length === 0 || nums.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${where(spec)}: fields.difficulty must list whole numbers from 1, got ${JSON.stringify(spec.fields?.difficulty)}`);
  return nums;
}

function tasksField(spec: DataSourceSpec): TaskName[] | undefined {
  const list = listField(spec, 'tasks');
  if (list === undefined) return undefined;
  for (const t of list) if (!taskNames.includes(t as TaskName)) throw new Error(`${where(spec)}: unknown task "${t}" in fields.tasks (known: ${taskNames.join(', ')})`);
  return list as TaskName[];
}

function filePath(spec: DataSourceSpec, options: OpenOptions): string {
  return options.baseDir ? path.resolve(options.baseDir, spec.uri) : spec.uri;
}

function builtinName(spec: DataSourceSpec): string | undefined {
  return spec.uri.startsWith('builtin:') ? spec.uri.slice('builtin:'.length) : undefined;
}

/**
 * A document source for a mixture. Built-ins: web-math, qa-short-cot, qa-long-cot (fields:
 * difficulty "1,2", tasks "arithmetic,countdown"), instructions (fields: format tagged|plain).
 * JSONL: fields.text, or fields.prompt and fields.response (rendered as one document).
 * Any other path is plain text (fields.split: paragraph|line|file). Files are read once, here,
 * so a bad file fails when the run starts, not hours into it.
 */
export function openDocumentSource(spec: DataSourceSpec, options: OpenOptions): DocumentSource {
  const seed = `${options.seed}:${spec.name}`;
  const builtin = builtinName(spec);
  if (builtin !== undefined) {
    switch (builtin) {
      case 'web-math':
        return { name: spec.name, open: () => webMathDocuments(seed) };
      case 'qa-short-cot':
      case 'qa-long-cot': {
        const style = builtin === 'qa-short-cot' ? 'short' : 'long';
        const difficulty = difficultyField(spec);
        const tasks = tasksField(spec);
        return { name: spec.name, open: () => qaDocuments({ seed, style, difficulty, tasks, render: options.render }) };
      }
      case 'instructions': {
        const format = spec.fields?.format ?? 'tagged';
        if (format !== 'tagged' && format !== 'plain') throw new Error(`${where(spec)}: fields.format must be tagged or plain`);
        return { name: spec.name, open: () => instructionDocuments({ seed, format, render: options.render }) };
      }
      default:
        throw new Error(`${where(spec)}: unknown built-in corpus "${builtin}" (known: ${builtinCorpora.join(', ')})`);
    }
  }
  const file = filePath(spec, options);
  let docs: Document[];
  if (file.endsWith('.jsonl')) {
    const f = spec.fields ?? {};
    if (f.text !== undefined) docs = loadJsonlDocuments(file, { text: f.text }, { source: spec.name });
    else if (f.prompt !== undefined && f.response !== undefined) {
      const render = options.render ?? renderQa;
      docs = loadJsonlPairs(file, { prompt: f.prompt, response: f.response }, { source: spec.name }).map((p) => ({ text: render(p.prompt, p.response), source: spec.name }));
    } else throw new Error(`${where(spec)}: a JSONL source needs fields.text, or fields.prompt and fields.response`);
  } else {
    docs = loadTextDocuments(file, { source: spec.name, split: spec.fields?.split as TextLoaderOptions['split'] });
  }
  return { name: spec.name, open: () => docs[Symbol.iterator]() };
}

/** Mixture components from a run spec's list of weighted sources. */
export function mixtureFromSources(specs: readonly DataSourceSpec[], options: OpenOptions): MixtureComponent[] {
  return specs.map((spec) => {
    if (spec.weight === undefined) throw new Error(`${where(spec)}: a mixture source needs a weight`);
    return { source: openDocumentSource(spec, options), weight: spec.weight };
  });
}

/**
 * Prompt/response pairs for SFT. Built-ins: qa-short-cot, qa-long-cot, instructions, or a
 * task name (builtin:arithmetic …: its training items with the short reference; fields.style
 * long for the long one). JSONL: fields.prompt and fields.response. Endless: a file is cycled.
 */
export function* openPairs(spec: DataSourceSpec, options: OpenOptions): Generator<PromptResponse> {
  const seed = `${options.seed}:${spec.name}`;
  const builtin = builtinName(spec);
  if (builtin === 'qa-short-cot' || builtin === 'qa-long-cot') {
    yield* qaPairs({ seed, style: builtin === 'qa-short-cot' ? 'short' : 'long', difficulty: difficultyField(spec), tasks: tasksField(spec) });
    return;
  }
  if (builtin === 'instructions') {
    const format = spec.fields?.format ?? 'tagged';
    if (format !== 'tagged' && format !== 'plain') throw new Error(`${where(spec)}: fields.format must be tagged or plain`);
    yield* instructionPairs({ seed, format });
    return;
  }
  if (builtin !== undefined) {
    if (!taskNames.includes(builtin as TaskName)) {
      throw new Error(`${where(spec)}: unknown built-in "${builtin}" for prompt/response pairs (known: qa-short-cot, qa-long-cot, instructions, ${taskNames.join(', ')})`);
    }
    const g = taskGenerator(builtin);
    const long = spec.fields?.style === 'long';
    const items = taskStream({ task: g.name, split: 'train', difficulty: difficultyField(spec) ?? [1], seed });
    for (const item of items) yield { prompt: item.prompt, response: long ? item.referenceLong : item.reference, source: spec.name };
    return;
  }
  const f = spec.fields ?? {};
  if (!spec.uri.endsWith('.jsonl') || f.prompt === undefined || f.response === undefined) {
    throw new Error(`${where(spec)}: SFT pairs come from a built-in or a .jsonl file with fields.prompt and fields.response`);
  }
  const pairs = loadJsonlPairs(filePath(spec, options), { prompt: f.prompt, response: f.response }, { source: spec.name });
  if (pairs.length === 0) throw new Error(`${where(spec)}: no pairs`);
  for (;;) yield* pairs;
}
