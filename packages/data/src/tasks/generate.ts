// Items for training and evaluation from the task generators: ids, splits, seeded streams.
import { createRng, hashString, type Rng } from '../rng';
import { defaultHeldOutFraction, splitOf, type Split } from '../split';
import { arithmeticTask } from './arithmetic';
import { countdownTask } from './countdown';
import { formatCompletion, parseCompletion } from './format';
import { modularTask } from './modular';
import { multipleChoiceTask } from './multiple-choice';
import { sortingTask } from './sorting';
import type { Problem, TaskGenerator, TaskItem, TaskName } from './types';

export const taskGenerators: Readonly<Record<TaskName, TaskGenerator>> = {
  arithmetic: arithmeticTask,
  countdown: countdownTask,
  modular: modularTask,
  'multiple-choice': multipleChoiceTask,
  sorting: sortingTask,
};

export const taskNames = Object.keys(taskGenerators) as TaskName[];

export function taskGenerator(name: string): TaskGenerator {
  const g = (taskGenerators as Record<string, TaskGenerator | undefined>)[name];
  if (!g) throw new Error(`unknown task ${JSON.stringify(name)} (known: ${taskNames.join(', ')})`);
  return g;
}

export interface TaskSetOptions {
  task: TaskName;
  split: Split;
  /** One difficulty, or several drawn uniformly per item. */
  difficulty: number | readonly number[];
  seed: number | string;
  heldOutFraction?: number;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function toItem(name: TaskName, difficulty: number, split: Split, p: Problem): TaskItem {
  return {
    // The wording is part of the id: two phrasings of one problem are two items (same split).
    id: `${name}-${hex(hashString(p.canonical))}${hex(hashString(`${p.canonical}\u0000${p.prompt}`))}`,
    task: name,
    difficulty,
    split,
    prompt: p.prompt,
    answer: p.answer,
    reference: formatCompletion(p.steps.join(', '), p.answer),
    referenceLong: formatCompletion(p.longSteps.join(' '), p.answer),
    canonical: p.canonical,
    meta: p.meta,
  };
}

function difficulties(d: number | readonly number[], g: TaskGenerator): number[] {
  const list = typeof d === 'number' ? [d] : [...d];
  if (list.length === 0) throw new RangeError('no difficulty given');
  for (const x of list) if (!Number.isInteger(x) || x < 1 || x > g.maxDifficulty) throw new RangeError(`${g.name} difficulty must be 1..${g.maxDifficulty}, got ${x}`);
  return list;
}

// Problems are drawn until one lands in the wanted split; at the default held-out fraction
// an eval item costs about five draws. This bounds the loop for a fraction near 0 or 1.
const maxDrawsPerItem = 20000;

function drawItem(rng: Rng, g: TaskGenerator, levels: number[], split: Split, fraction: number): TaskItem {
  for (let draw = 0; draw < maxDrawsPerItem; draw++) {
    const difficulty = levels.length === 1 ? levels[0] : rng.pick(levels);
    const p = g.sample(rng, difficulty);
    if (splitOf(p.canonical, fraction) === split) return toItem(g.name, difficulty, split, p);
  }
  throw new Error(`${g.name}: no ${split} problem found in ${maxDrawsPerItem} draws`);
}

/**
 * An endless seeded stream of items of one split (problems may repeat, as in training
 * epochs). The same options give the same stream.
 */
export function* taskStream(options: TaskSetOptions): Generator<TaskItem> {
  const g = taskGenerator(options.task);
  const levels = difficulties(options.difficulty, g);
  const rng = createRng('tasks', options.task, options.split, options.seed);
  const fraction = options.heldOutFraction ?? defaultHeldOutFraction;
  for (;;) yield drawItem(rng, g, levels, options.split, fraction);
}

/**
 * `count` items with distinct problems (distinct canonical forms), e.g. an evaluation set.
 * Throws when the split holds fewer distinct problems than asked for (the easiest levels
 * have only about a hundred problems in all).
 */
export function generateTasks(options: TaskSetOptions & { count: number }): TaskItem[] {
  if (!Number.isInteger(options.count) || options.count < 0) throw new RangeError(`count must be a whole number, got ${options.count}`);
  const out: TaskItem[] = [];
  const seen = new Set<string>();
  let sinceNew = 0;
  for (const item of taskStream(options)) {
    if (out.length >= options.count) break;
    if (seen.has(item.canonical)) {
      // Many repeats in a row: the split is (nearly) exhausted at these difficulties.
      if (++sinceNew > 5000) {
        throw new Error(`${options.task}: only ${out.length} distinct ${options.split} problems found at difficulty ${JSON.stringify(options.difficulty)}, ${options.count} asked for`);
      }
      continue;
    }
    sinceNew = 0;
    seen.add(item.canonical);
    out.push(item);
  }
  return out;
}

/** Whether `answer` (text inside <answer>) is correct for `item`. */
export function checkAnswer(item: Pick<TaskItem, 'task' | 'answer' | 'meta'>, answer: string): boolean {
  return taskGenerator(item.task).check(item, answer);
}

/** Whether a whole completion answers `item` correctly (judged on its last <answer>). */
export function checkCompletion(item: Pick<TaskItem, 'task' | 'answer' | 'meta'>, completion: string): boolean {
  const { answer } = parseCompletion(completion);
  return answer !== null && checkAnswer(item, answer);
}

export interface TaskMixOptions {
  tasks: readonly { task: TaskName; difficulty: number | readonly number[]; weight?: number }[];
  split: Split;
  seed: number | string;
  heldOutFraction?: number;
}

/** An endless stream mixing several tasks, each item's task drawn by weight (default 1 each). */
export function* taskMixStream(options: TaskMixOptions): Generator<TaskItem> {
  if (options.tasks.length === 0) throw new RangeError('a task mix needs at least one task');
  const weights = options.tasks.map((t) => t.weight ?? 1);
  if (weights.some((w) => !Number.isFinite(w) || w < 0) || !weights.some((w) => w > 0)) throw new RangeError(`task mix weights must be >= 0 and not all 0, got ${weights.join(', ')}`);
  const total = weights.reduce((s, w) => s + w, 0);
  const streams = options.tasks.map((t, i) =>
    taskStream({ task: t.task, difficulty: t.difficulty, split: options.split, seed: `${options.seed}:${i}`, heldOutFraction: options.heldOutFraction }),
  );
  const rng = createRng('task-mix', options.seed);
  for (;;) {
    let u = rng.next() * total;
    let i = 0;
    while (i < weights.length - 1 && u >= weights[i]) u -= weights[i++];
    // Skip zero-weight entries the float walk might land on at the end.
    while (weights[i] === 0) i--;
    yield streams[i].next().value as TaskItem;
  }
}
