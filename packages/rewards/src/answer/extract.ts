// Finding the final answer in a completion. Only what the model committed to counts:
// an <answer>…</answer> block, a \boxed{…} (nested braces included) or a match of a
// configured pattern; of all candidates the last one written wins (a model that
// corrects itself means the later answer). Text elsewhere (the reasoning) is never
// searched for the reference, so restating it while thinking earns nothing.
import { braceTable } from './braces';
import { normalizeAnswer } from './normalize';

export type AnswerSource = 'answer' | 'boxed' | 'pattern';

export interface ExtractOptions {
  /** Where answers may come from. */
  sources: AnswerSource[];
  /** The tag of the answer block (default "answer"). */
  answerTag: string;
  /** A regular expression whose first capture group (or whole match) is an answer. */
  pattern?: RegExp;
}

export interface Extracted {
  answer: string;
  source: AnswerSource;
  /** The block holding the chosen answer has several different boxed answers. */
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
  const blocks = opts.sources.includes('answer') ? answerBlocks(completion, opts.answerTag) : [];
  const candidates: Candidate[] = [...blocks];
  const braces = opts.sources.includes('boxed') ? braceTable(completion) : undefined;
  if (braces) candidates.push(...boxedAnswers(completion, braces, 0, completion.length));
  if (opts.sources.includes('pattern') && opts.pattern) candidates.push(...patternAnswers(completion, opts.pattern));
  const chosen = lastCandidate(candidates);
  if (!chosen) return null;
  // A boxed answer inside an answer block is that block's answer; a block with two
  // different boxed answers hedges between them.
  const block = blocks.find((b) => b.start <= chosen.start && chosen.end <= b.end);
  let multiple = false;
  if (block && braces) {
    const boxes = boxedAnswers(completion, braces, block.start, block.end);
    // Normalising is for answer-sized text; a huge box is compared as written.
    multiple = new Set(boxes.map((b) => (b.text.length <= 1000 ? normalizeAnswer(b.text) : b.text))).size > 1;
  }
  return { answer: chosen.text.trim(), source: chosen.source, multiple };
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
