// format: the completion has the required structure. By default
// <think>…</think><answer>…</answer>, each tag exactly once, in that order, with only
// whitespace before <think>, between the blocks and after </answer>, and a non-empty
// answer. Full credit is 1; a completion failing some checks gets
// partialCredit × (checks passed / checks), so partialCredit 0 (default) is all or nothing.
import { RewardSpecError } from '../errors';
import { OptionValue, RewardComponent } from '../types';

interface FormatSettings {
  think: { open: string; close: string } | null;
  answer: { open: string; close: string };
  thinkOpenedInPrompt: boolean;
  partialCredit: number;
  regex: RegExp | null;
}

export const format: RewardComponent<FormatSettings> = {
  name: 'format',
  description: 'Structure <think>…</think><answer>…</answer>, each once, nothing after the answer: 1; otherwise partial credit.',
  options: {
    thinkTag: { type: 'string', default: 'think', description: 'Tag of the reasoning block; "" for none required.' },
    answerTag: { type: 'string', default: 'answer', description: 'Tag of the answer block.' },
    thinkOpenedInPrompt: { type: 'boolean', default: false, description: 'The prompt already ends with <think>, so the completion starts inside it.' },
    partialCredit: { type: 'number', default: 0, min: 0, max: 1, description: 'Most a non-conforming completion can get, scaled by the share of checks it passes.' },
    regex: { type: 'string', default: '', description: 'Instead of the tag checks: the whole completion must match this regular expression.' },
  },
  prepare: (o, path) => formatSettings(o, path),
  score: (input, s) => {
    if (s.regex) return s.regex.test(input.completion) ? 1 : 0;
    const checks = structureChecks(input.completion, s);
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
    partialCredit: o.partialCredit as number,
    regex,
  };
}

function count(s: string, needle: string): number {
  let n = 0;
  for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Each structural requirement, true where met. */
function structureChecks(text: string, s: FormatSettings): boolean[] {
  const a = s.answer;
  const answerOpen = text.indexOf(a.open);
  const answerClose = text.indexOf(a.close);
  const answerOnce = count(text, a.open) === 1 && count(text, a.close) === 1 && answerOpen < answerClose;
  const answerFilled = answerOnce && text.slice(answerOpen + a.open.length, answerClose).trim() !== '';
  const nothingAfter = answerClose >= 0 && text.slice(answerClose + a.close.length).trim() === '';
  if (!s.think) {
    const nothingBefore = answerOpen >= 0 && text.slice(0, answerOpen).trim() === '';
    return [answerOnce, answerFilled, nothingAfter, nothingBefore];
  }
  const t = s.think;
  const thinkOpen = s.thinkOpenedInPrompt ? 0 : text.indexOf(t.open);
  const thinkClose = text.indexOf(t.close);
  const opens = count(text, t.open);
  const thinkOnce = (s.thinkOpenedInPrompt ? opens === 0 : opens === 1) && count(text, t.close) === 1 && thinkOpen >= 0 && thinkOpen < thinkClose;
  const startsWithThink = s.thinkOpenedInPrompt || (thinkOpen >= 0 && text.slice(0, thinkOpen).trim() === '');
  const inOrder = thinkOnce && answerOnce && thinkClose < answerOpen && text.slice(thinkClose + t.close.length, answerOpen).trim() === '';
  return [thinkOnce, answerOnce, answerFilled, startsWithThink, inOrder, nothingAfter];
}
