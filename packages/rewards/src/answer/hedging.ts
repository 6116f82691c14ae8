// A final answer that hedges ("3 or 4", "maybe 5", "5?") or offers alternatives (±2
// when one value was asked for) commits to nothing and must not score, even when one
// of its candidates is right; otherwise listing every guess would be learned.

/** " or " and " and " joining the values of a list. */
export const listJoins = /\s+(?:or|and)\s+/gi;

const hedgeWords = /\b(?:or|either|maybe|perhaps|possibly|probably|likely|unsure|not sure|guess|might|could be|approximately or)\b/i;

/** Why the answer does not commit to one value, or null when it does. */
export function hedgeReason(answer: string, reference: string): string | null {
  // "x = 2 or x = 3" states every solution when the reference lists several.
  if (/[,;]/.test(reference)) answer = answer.replace(listJoins, ', ');
  const words = hedgeWords.exec(answer);
  if (words && !hedgeWords.test(reference)) return `hedged ("${words[0]}")`;
  if (/\?\s*$/.test(answer) && !/\?\s*$/.test(reference)) return 'hedged (question mark)';
  const pm = /\\pm|±|\\mp|∓/;
  if (pm.test(answer) && !pm.test(reference)) return 'multiple values (±)';
  return null;
}
