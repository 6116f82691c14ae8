// QA-style documents with worked reasoning, built from the tasks' training split only, so
// nothing in mid-training poses a held-out problem. Short-CoT uses the terse reference,
// long-CoT the explained one; the seeds found both matter and that long-CoT also brings
// verbosity, so the two are separate corpora to be weighted per branch.
import { createRng } from '../rng';
import { taskNames, taskStream } from '../tasks/generate';
import type { TaskItem, TaskName } from '../tasks/types';
import { renderQa, type Document, type PairRenderer, type PromptResponse } from './types';

export interface QaOptions {
  seed: number | string;
  style: 'short' | 'long';
  tasks?: readonly TaskName[];
  difficulty?: readonly number[];
  heldOutFraction?: number;
  render?: PairRenderer;
}

/** The training-split task items a QA corpus is made of (exposed so the split can be checked). */
export function* qaItems(options: QaOptions): Generator<TaskItem> {
  const tasks = options.tasks ?? taskNames;
  if (tasks.length === 0) throw new RangeError('qa corpus: no tasks given');
  const rng = createRng('qa', options.style, options.seed);
  const streams = tasks.map((task) =>
    taskStream({ task, split: 'train', difficulty: options.difficulty ?? [1, 2, 3, 4, 5], seed: `${options.seed}`, heldOutFraction: options.heldOutFraction }),
  );
  for (;;) yield streams[rng.int(0, streams.length - 1)].next().value as TaskItem;
}

/** Endless prompt/response pairs in the answer format (for SFT or instruction mixing). */
export function* qaPairs(options: QaOptions): Generator<PromptResponse> {
  const source = `qa-${options.style}-cot`;
  for (const item of qaItems(options)) {
    yield { prompt: item.prompt, response: options.style === 'short' ? item.reference : item.referenceLong, source };
  }
}

/** Endless QA documents: each pair rendered as one text. */
export function* qaDocuments(options: QaOptions): Generator<Document> {
  const render = options.render ?? renderQa;
  for (const pair of qaPairs(options)) yield { text: render(pair.prompt, pair.response), source: pair.source };
}
