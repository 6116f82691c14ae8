// Finding the final answer in a completion. Only what the model committed to counts:
// an <answer>…</answer> block, a \boxed{…} (nested braces included) or a match of a
// configured pattern, written after its reasoning (after the last </think>); of those
// the last one written wins. The reasoning itself is never searched, so restating the
// reference while thinking, or boxing it there, earns nothing. An answer section that
// commits to two different answers ("\boxed{3} or \boxed{4}", two answer blocks)
// commits to none: it is flagged as multiple.
import { braceTable } from '@temper/data';
import { normalizeAnswer } from './normalize';

export type AnswerSource = 'answer' | 'boxed' | 'pattern';

export interface ExtractOptions {
  /** Where answers may come from. */
  sources: AnswerSource[];
  /** The tag of the answer block (default "answer"). */
  answerTag: string;
  /** A regular expression whose first capture group (or whole match) is an answer. */
  pattern?: RegExp;
  /** The tag of the reasoning block, whose content is never an answer ('' for none). */
  reasoningTag?: string;
  /** The prompt opened the reasoning block: until it is closed, everything is reasoning. */
  reasoningOpen?: boolean;
  /** Whether two written answers are the same answer (default: equal once normalised). */
  same?: (a: string, b: string) => boolean;
}

export interface Extracted {
  answer: string;
  source: AnswerSource;
  /** The answer section holds several different answers. */
  multiple: boolean;
}

interface Candidate {
  start: number;
  end: number;
  text: string;
  source: AnswerSource;
}

/** The final answer of `completion`, or null when it commits to none. */
export function extractAnswer(completion: string, opts: ExtractOptions): Extracted | null {
  const [from, to] = answerSection(completion, opts.reasoningTag ?? 'think', opts.reasoningOpen ?? false);
  const inSection = (c: Candidate) => c.start >= from && c.end <= to;
  const candidates: Candidate[] = [];
  if (opts.sources.includes('answer')) candidates.push(...answerBlocks(completion, opts.answerTag).filter(inSection));
  if (opts.sources.includes('boxed')) candidates.push(...boxedAnswers(completion, braceTable(completion), from, to));
  if (opts.sources.includes('pattern') && opts.pattern) candidates.push(...patternAnswers(completion, opts.pattern).filter(inSection));
  const chosen = lastCandidate(candidates);
  if (!chosen) return null;
  return { answer: chosen.text.trim(), source: chosen.source, multiple: differentAnswers(candidates, opts.same ?? sameText) };
}

// Where answers may be: after the last closing reasoning tag; nowhere when the prompt opened
// the reasoning and it never closed, or before an opening one that never closes (either way
// the reasoning ran to the end); everywhere when there is no reasoning tag.
function answerSection(s: string, tag: string, opened: boolean): [number, number] {
  if (!tag) return [0, s.length];
  const close = s.lastIndexOf(`</${tag}>`);
  if (close >= 0) return [close + tag.length + 3, s.length];
  if (opened) return [s.length, s.length];
  const open = s.indexOf(`<${tag}>`);
  return open >= 0 ? [0, open] : [0, s.length];
}

// Candidates that hold no other candidate are the answers actually written ("<answer>
// the answer is \boxed{5}</answer>" is the one answer 5); more than one distinct value
// among them is more than one answer. Sorted by start, a candidate holds another exactly
// when the next one starts inside it, which keeps this linear on hostile input.
function differentAnswers(candidates: Candidate[], same: (a: string, b: string) => boolean): boolean {
  const written = candidates.filter((c) => c.text.trim() !== '').sort((a, b) => a.start - b.start || b.end - a.end);
  let first: string | undefined;
  const seen = new Set<string>();
  for (let i = 0; i < written.length; i++) {
    const c = written[i];
    if (i + 1 < written.length && written[i + 1].start < c.end) continue;
    const text = c.text.trim();
    if (seen.has(text)) continue;
    seen.add(text);
    if (first === undefined) first = text;
    else if (!same(text, first)) return true;
  }
  return false;
}

// Normalising is for answer-sized text; a huge answer is compared as written.
function sameText(a: string, b: string): boolean {
  return a.length <= 1000 && b.length <= 1000 ? normalizeAnswer(a) === normalizeAnswer(b) : a === b;
}

function lastCandidate(candidates: Candidate[]): Candidate | undefined {
  let best: Candidate | undefined;
  for (const c of candidates) {
    if (c.text.trim() === '') continue;
    if (!best || c.start > best.start) best = c;
  }
  return best;
}

// Each closing tag pairs with the nearest opening tag before it (and after the previous
// closing tag), so "<answer>" written inside the reasoning does not swallow everything up
// to the real answer. Both lists come from forward scans: linear on any input.
function answerBlocks(s: string, tag: string): Candidate[] {
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  const opens = positions(s, open);
  const out: Candidate[] = [];
  let from = 0;
  let j = 0;
  for (const end of positions(s, close)) {
    while (j < opens.length && opens[j] + open.length <= end) j++;
    const start = j > 0 ? opens[j - 1] : -1;
    if (start >= from) out.push({ start, end: end + close.length, text: s.slice(start + open.length, end), source: 'answer' });
    from = end + close.length;
  }
  return out;
}

function positions(s: string, needle: string): number[] {
  const out: number[] = [];
  for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + needle.length)) out.push(i);
  return out;
}

function boxedAnswers(s: string, braces: Map<number, number>, from: number, to: number): Candidate[] {
  const out: Candidate[] = [];
  for (let at = s.indexOf('\\boxed', from); at >= 0 && at < to; at = s.indexOf('\\boxed', at + 6)) {
    let open = at + 6;
    while (s[open] === ' ') open++;
    if (s[open] !== '{') continue;
    const end = braces.get(open) ?? -1;
    if (end < 0 || end > to) continue;
    out.push({ start: at, end, text: s.slice(open + 1, end - 1), source: 'boxed' });
  }
  return out;
}

function patternAnswers(s: string, pattern: RegExp): Candidate[] {
  const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g');
  const out: Candidate[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    if (m[0] === '') {
      re.lastIndex++;
      continue;
    }
    const text = m[1] ?? m[0];
    out.push({ start: m.index, end: m.index + m[0].length, text, source: 'pattern' });
  }
  return out;
}
