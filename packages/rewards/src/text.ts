// Parts of a completion that components look at, and its length in tokens.

export type Scope = 'completion' | 'reasoning' | 'answer';
export const scopes = ['completion', 'reasoning', 'answer'] as const;

/**
 * The part of `text` a component should look at: everything, the reasoning (inside
 * <think>…</think>, or before </think> when the prompt opened it, else everything
 * before the answer block) or the answer block (after </think> when there is none).
 */
export function textInScope(text: string, scope: Scope): string {
  if (scope === 'completion') return text;
  const thinkEnd = text.lastIndexOf('</think>');
  const answerStart = text.lastIndexOf('<answer>');
  if (scope === 'reasoning') {
    if (thinkEnd >= 0) {
      const open = text.lastIndexOf('<think>', thinkEnd);
      return text.slice(open >= 0 ? open + 7 : 0, thinkEnd);
    }
    return answerStart >= 0 ? text.slice(0, answerStart) : text;
  }
  if (answerStart >= 0) {
    const close = text.indexOf('</answer>', answerStart);
    return text.slice(answerStart + 8, close >= 0 ? close : text.length);
  }
  return thinkEnd >= 0 ? text.slice(thinkEnd + 8) : text;
}

/** Roughly four characters a token for English and code; used only when no count is given. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Where a prompt leaves the reasoning block: 'opened' when it ends inside one (DeepSeek-R1's
 * template ends with <think>), 'closed' when it ends right after one (Qwen3 with
 * enable_thinking false ends with an empty <think></think>: the model answers without
 * reasoning), 'none' otherwise (the completion opens its own, as Qwen3 thinking does).
 */
export function reasoningInPrompt(prompt: string | undefined, tag: string): 'none' | 'opened' | 'closed' {
  if (!prompt || !tag) return 'none';
  const tail = prompt.trimEnd();
  if (tail.endsWith(`<${tag}>`)) return 'opened';
  if (tail.endsWith(`</${tag}>`)) return 'closed';
  return 'none';
}

/** The word n-grams of `text`, lower-cased, in order (none when it has fewer than n words). */
export function wordNgrams(text: string, n: number): string[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(' '));
  return out;
}

/** Distinct word n-grams over all of them (1 when there are too few words to repeat). */
export function distinctShare(text: string, n: number): number {
  const grams = wordNgrams(text, n);
  return grams.length <= 1 ? 1 : new Set(grams).size / grams.length;
}
