// The answer format every built-in task uses: reasoning inside <think>...</think>, the final
// answer inside <answer>...</answer>. Format rewards and accuracy both read completions
// through extractAnswer, so the rule for "what counts as the answer" lives in one place.
import type { TaskItem } from './types';

export const answerFormatInstruction = 'Think inside <think></think>, then give the final answer inside <answer></answer>.';

/**
 * How a task prompt is presented:
 * - 'compact': the question alone (for tiny models, which learn the format from SFT and
 *   cannot afford a long instruction in every prompt);
 * - 'instructed': the question followed by answerFormatInstruction.
 */
export type PromptStyle = 'compact' | 'instructed';

export function formatTaskPrompt(item: Pick<TaskItem, 'prompt'>, style: PromptStyle = 'compact'): string {
  return style === 'compact' ? item.prompt : `${item.prompt}\n${answerFormatInstruction}`;
}

/** The prompt as chat messages, for a tokenizer's chat template. */
export function taskMessages(item: Pick<TaskItem, 'prompt'>, style: PromptStyle = 'compact'): { role: string; content: string }[] {
  return [{ role: 'user', content: formatTaskPrompt(item, style) }];
}

/** A completion in the required format. */
export function formatCompletion(reasoning: string, answer: string): string {
  return `<think>${reasoning}</think><answer>${answer}</answer>`;
}

export interface ParsedCompletion {
  /** The completion is exactly <think>…</think><answer>…</answer> (whitespace around allowed). */
  wellFormed: boolean;
  /** Text of the last <answer>…</answer>, or null if there is none. */
  answer: string | null;
  /** Text of the first <think>…</think>, or null. */
  reasoning: string | null;
}

const strict = /^\s*<think>([\s\S]*?)<\/think>\s*<answer>([\s\S]*?)<\/answer>\s*$/;

/** Read a completion: the answer a checker should judge and whether the format was kept. */
export function parseCompletion(completion: string): ParsedCompletion {
  const m = strict.exec(completion);
  if (m && !m[1].includes('<answer>') && !m[1].includes('<think>') && !m[2].includes('<answer>') && !m[2].includes('<think>')) {
    return { wellFormed: true, reasoning: m[1], answer: m[2].trim() };
  }
  // Lenient reading for accuracy: the last closed answer block wins (a model that restates
  // its answer is judged on what it finished with).
  const answers = [...completion.matchAll(/<answer>([\s\S]*?)<\/answer>/g)];
  const think = /<think>([\s\S]*?)<\/think>/.exec(completion);
  return { wellFormed: false, answer: answers.length > 0 ? answers[answers.length - 1][1].trim() : null, reasoning: think ? think[1] : null };
}
