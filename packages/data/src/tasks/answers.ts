// Normalising answer text before comparison: models write "12", " 12 ", "+12" or "12." for
// the same number, and a checker should not punish that, while "12 or 13" stays wrong.

/** The integer written in `text`, or null when it is not exactly one integer. */
export function parseIntegerAnswer(text: string): number | null {
  const t = text.trim().replace(/\.$/, '').replace(/,(?=\d{3}\b)/g, '');
  if (!/^[+-]?\d{1,15}$/.test(t)) return null;
  return Number(t);
}

/** A list of integers separated by spaces and/or commas, or null if anything else is present. */
export function parseIntegerList(text: string): number[] | null {
  const parts = text.trim().split(/[\s,]+/).filter((p) => p.length > 0);
  if (parts.length === 0) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[+-]?\d{1,15}$/.test(p)) return null;
    out.push(Number(p));
  }
  return out;
}

/**
 * The option letter a multiple-choice answer commits to: one letter of `letters`, bare or
 * as "(B)", "B)", "B." or "B:", optionally followed by that option's value ("B) 36", "B)36").
 * Null for anything else: two letters, prose, or a value that is not the letter's option.
 */
export function parseChoiceAnswer(text: string, options: readonly number[], letters = 'ABCDE'): string | null {
  const m = /^\(?\s*([A-Z])\s*\)?[.:]?(?:\s*([+-]?\d+))?$/.exec(text.trim());
  if (!m || !letters.includes(m[1])) return null;
  if (m[2] !== undefined) {
    const value = parseIntegerAnswer(m[2]);
    if (value === null || options[letters.indexOf(m[1])] !== value) return null;
  }
  return m[1];
}
