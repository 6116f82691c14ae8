// format: the completion has the required structure: a reasoning block, then the answer.
// By default <think>…</think> once, at the start, then the answer right after it: an
// <answer>…</answer> block (the built-in tasks' format; nothing may follow it) or, when the
// completion writes no answer block, a \boxed{…} after the reasoning (how Qwen3 and
// DeepSeek-R1 answer math). The prompt decides where the reasoning starts: a template that
// ends the prompt inside <think> (DeepSeek-R1) leaves the completion to close it, one that
// ends it with a closed, empty <think></think> (Qwen3 with thinking off) wants the answer
// alone. Full credit is 1; a completion failing some checks gets
// partialCredit × (checks passed / checks), so partialCredit 0 (default) is all or nothing.
import { braceTable } from '@temper/data';
import { RewardSpecError } from '../errors';
import { reasoningInPrompt } from '../text';
import { OptionValue, RewardComponent } from '../types';

interface Tag {
  open: string;
  close: string;
}

interface FormatSettings {
  think: Tag | null;
  answer: Tag;
  thinkOpenedInPrompt: boolean;
  boxed: boolean;
  partialCredit: number;
  regex: RegExp | null;
}

export const format: RewardComponent<FormatSettings> = {
  name: 'format',
  description: 'Structure <think>…</think> then the answer (<answer>…</answer>, or a \\boxed{} after the reasoning), each once, nothing after an answer block: 1; otherwise partial credit.',
  options: {
    thinkTag: { type: 'string', default: 'think', description: 'Tag of the reasoning block; "" for none required.' },
    answerTag: { type: 'string', default: 'answer', description: 'Tag of the answer block.' },
    boxed: { type: 'boolean', default: true, description: 'A \\boxed{} after the reasoning is an answer too, when there is no answer block.' },
    thinkOpenedInPrompt: { type: 'boolean', default: false, description: 'The prompt already opened <think> (also seen from the prompt itself when the scorer is given it).' },
    partialCredit: { type: 'number', default: 0, min: 0, max: 1, description: 'Most a non-conforming completion can get, scaled by the share of checks it passes.' },
    regex: { type: 'string', default: '', description: 'Instead of the tag checks: the whole completion must match this regular expression.' },
  },
  prepare: (o, path) => formatSettings(o, path),
  score: (input, s) => {
    if (s.regex) return s.regex.test(input.completion) ? 1 : 0;
    const tag = s.think?.open.slice(1, -1) ?? '';
    const reasoning = s.thinkOpenedInPrompt ? 'opened' : reasoningInPrompt(input.prompt, tag);
    const checks = structureChecks(input.completion, s, reasoning);
    const passed = checks.filter(Boolean).length;
    if (passed === checks.length) return 1;
    return { value: (s.partialCredit * passed) / checks.length, flags: ['bad_format'] };
  },
};

function formatSettings(o: Record<string, OptionValue>, path: string): FormatSettings {
  const tag = (name: string) => ({ open: `<${name}>`, close: `</${name}>` });
  for (const key of ['thinkTag', 'answerTag'] as const) {
    const v = o[key] as string;
    if ((v !== '' || key === 'answerTag') && !/^[A-Za-z][\w-]*$/.test(v)) throw new RewardSpecError(`${path}.${key}`, 'must be a tag name like "think"');
  }
  let regex: RegExp | null = null;
  if (o.regex) {
    try {
      regex = new RegExp(`^(?:${o.regex as string})$`, 's');
    } catch (err) {
      throw new RewardSpecError(`${path}.regex`, `not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return {
    think: o.thinkTag ? tag(o.thinkTag as string) : null,
    answer: tag(o.answerTag as string),
    thinkOpenedInPrompt: o.thinkOpenedInPrompt as boolean,
    boxed: o.boxed as boolean,
    partialCredit: o.partialCredit as number,
    regex,
  };
}

function count(s: string, needle: string): number {
  let n = 0;
  for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Where the answer is in `text` after position `from`: once, filled, and what may surround it. */
interface AnswerPart {
  once: boolean;
  filled: boolean;
  start: number;
  /** Nothing but whitespace after it (always true of a \boxed{} answer, which sits in prose). */
  nothingAfter: boolean;
  /** Written as a block (whitespace only may separate it from the reasoning) rather than in prose. */
  block: boolean;
}

function answerPart(text: string, from: number, s: FormatSettings): AnswerPart {
  const a = s.answer;
  if (!s.boxed || text.includes(a.open) || text.includes(a.close)) {
    const open = text.indexOf(a.open);
    const close = text.indexOf(a.close);
    const once = count(text, a.open) === 1 && count(text, a.close) === 1 && open < close;
    return {
      once,
      filled: once && text.slice(open + a.open.length, close).trim() !== '',
      start: open,
      nothingAfter: close >= 0 && text.slice(close + a.close.length).trim() === '',
      block: true,
    };
  }
  // The last \boxed{…} after the reasoning is the answer.
  const braces = braceTable(text);
  let start = -1;
  let content = '';
  for (let at = text.indexOf('\\boxed', from); at >= 0; at = text.indexOf('\\boxed', at + 6)) {
    let open = at + 6;
    while (text[open] === ' ') open++;
    const end = text[open] === '{' ? (braces.get(open) ?? -1) : -1;
    if (end < 0) continue;
    start = at;
    content = text.slice(open + 1, end - 1);
  }
  return { once: start >= 0, filled: start >= 0 && content.trim() !== '', start, nothingAfter: true, block: false };
}

/** Each structural requirement, true where met. */
function structureChecks(text: string, s: FormatSettings, reasoning: 'none' | 'opened' | 'closed'): boolean[] {
  if (!s.think || reasoning === 'closed') {
    // No reasoning block wanted (none configured, or the prompt closed it): the answer alone.
    const answer = answerPart(text, 0, s);
    const nothingBefore = answer.start >= 0 && (!answer.block || text.slice(0, answer.start).trim() === '');
    const noReasoning = !s.think || (count(text, s.think.open) === 0 && count(text, s.think.close) === 0);
    return [...(s.think ? [noReasoning] : []), answer.once, answer.filled, answer.nothingAfter, nothingBefore];
  }
  const t = s.think;
  const opened = reasoning === 'opened';
  const thinkOpen = opened ? 0 : text.indexOf(t.open);
  const thinkClose = text.indexOf(t.close);
  const opens = count(text, t.open);
  const thinkOnce = (opened ? opens === 0 : opens === 1) && count(text, t.close) === 1 && thinkOpen >= 0 && thinkOpen < thinkClose;
  const startsWithThink = opened || (thinkOpen >= 0 && text.slice(0, thinkOpen).trim() === '');
  const afterThink = thinkClose >= 0 ? thinkClose + t.close.length : text.length;
  const answer = answerPart(text, afterThink, s);
  const inOrder = thinkOnce && answer.once && afterThink <= answer.start && (!answer.block || text.slice(afterThink, answer.start).trim() === '');
  return [thinkOnce, answer.once, answer.filled, startsWithThink, inOrder, answer.nothingAfter];
}
