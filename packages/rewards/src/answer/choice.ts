// Multiple-choice answers: the reference is a single letter (A-E by default); the model
// may write "B", "(B)", "B)", "B. 42", "Answer: C", "\text{(D)}", "option E". It is
// right only when exactly one choice letter stands alone in its answer and that is the
// reference: "A or B" and "A, C" name several and do not score.

/** The choice letter a reference names ("B", "(B)", "B."), or null if it is not one. */
export function referenceChoice(reference: string, choices: string): string | null {
  const m = /^\(?\s*([A-Z])\s*\)?\.?$/.exec(reference.trim());
  return m && choices.includes(m[1]) ? m[1] : null;
}

/** The distinct choice letters that stand alone in an answer, in order of appearance. */
export function choicesIn(answer: string, choices: string): string[] {
  const found: string[] = [];
  // A letter stands alone when no other letter touches it: "B", "(B)", "B.", but not the
  // "A" of "Answer" or the "C" of "\text{Choice}".
  const re = /(^|[^A-Za-z\\])([A-Z])(?![A-Za-z])/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(answer)) !== null) {
    if (choices.includes(m[2]) && !found.includes(m[2])) found.push(m[2]);
  }
  return found;
}

/** True when the answer commits to exactly the reference's choice. */
export function choiceMatches(answer: string, referenceLetter: string, choices: string): boolean {
  const cleaned = answer.replace(/\\(?:text|textbf|mathrm|mathbf|boxed)\s*\{([^{}]*)\}/g, '$1');
  const letters = choicesIn(cleaned, choices);
  return letters.length === 1 && letters[0] === referenceLetter;
}
