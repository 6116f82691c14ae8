// A final answer that hedges ("3 or 4", "maybe 5", "5?") or offers alternatives (±2
// when one value was asked for) commits to nothing and must not score, even when one
// of its candidates is right; otherwise listing every guess would be learned.

const hedgeWords = /\b(?:or|either|maybe|perhaps|possibly|probably|likely|unsure|not sure|guess|might|could be|approximately or)\b/i;

/** Why the answer does not commit to one value, or null when it does. */
export function hedgeReason(answer: string, reference: string): string | null {
  const words = hedgeWords.exec(answer);
  if (words && !hedgeWords.test(reference)) return `hedged ("${words[0]}")`;
  if (/\?\s*$/.test(answer) && !/\?\s*$/.test(reference)) return 'hedged (question mark)';
  const pm = /\\pm|±|\\mp|∓/;
  if (pm.test(answer) && !pm.test(reference)) return 'multiple values (±)';
  return null;
}
