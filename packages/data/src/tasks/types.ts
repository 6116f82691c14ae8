// Plain data for built-in reasoning tasks. A task generator only knows how to pose one random
// problem at a difficulty and how to judge an answer to it; ids, splits and streams are
// handled once for all tasks in tasks/generate.ts.
import type { Rng } from '../rng';
import type { Split } from '../split';

export type TaskName = 'arithmetic' | 'countdown' | 'modular' | 'multiple-choice' | 'sorting';

export interface TaskItem {
  /** Stable id of the problem: the same problem has the same id in every run. */
  id: string;
  task: TaskName;
  /** 1 (a tiny model learns it in minutes) up to the task's maxDifficulty. */
  difficulty: number;
  split: Split;
  /** The question alone; see format.ts for the prompt template around it. */
  prompt: string;
  /** The canonical answer (for countdown one valid expression among possibly many). */
  answer: string;
  /** A short worked completion: <think>steps</think><answer>answer</answer>. */
  reference: string;
  /** A long worked completion: the same steps explained in words, with a check. */
  referenceLong: string;
  /** The problem without surface wording; its hash decides the split. */
  canonical: string;
  /** Task-specific data a checker needs (e.g. countdown's numbers and target). */
  meta: Record<string, number | string | number[]>;
}

/** What a task generator produces before ids and splits are attached. */
export interface Problem {
  prompt: string;
  answer: string;
  /** Reasoning lines for the short completion. */
  steps: string[];
  /** Reasoning for the long completion. */
  longSteps: string[];
  canonical: string;
  meta: Record<string, number | string | number[]>;
}

export interface TaskGenerator {
  readonly name: TaskName;
  readonly maxDifficulty: number;
  /** One random problem at `difficulty` (1..maxDifficulty). */
  sample(rng: Rng, difficulty: number): Problem;
  /** Whether `answer` (the text inside <answer>) solves the item. */
  check(item: Pick<TaskItem, 'answer' | 'meta'>, answer: string): boolean;
}
