// language: a penalty for switching writing systems mid-answer (a Chinese phrase in an
// English solution, the mixing GRPO-trained models are known for). Letters are counted
// by script; those outside the expected script (and the scripts allowed with it) are
// "foreign", and the value is -penalty × foreign share once that share exceeds the
// tolerance. Math is left out by default: LaTeX commands are Latin in any language and
// Greek letters are variables.
import { RewardSpecError } from '../errors';
import { scopes, Scope, textInScope } from '../text';
import { OptionValue, RewardComponent } from '../types';

export const scripts = ['Latin', 'Greek', 'Cyrillic', 'Armenian', 'Hebrew', 'Arabic', 'Devanagari', 'Bengali', 'Thai', 'Georgian', 'Hangul', 'Kana', 'Han', 'Other'] as const;
export type Script = (typeof scripts)[number];

// Code point ranges of the scripts above, in order, for a fast lookup without a regular
// expression per character.
const ranges: [number, number, Script][] = [
  [0x41, 0x5a, 'Latin'], [0x61, 0x7a, 'Latin'], [0xc0, 0x24f, 'Latin'], [0x370, 0x3ff, 'Greek'], [0x400, 0x52f, 'Cyrillic'],
  [0x530, 0x58f, 'Armenian'], [0x590, 0x5ff, 'Hebrew'], [0x600, 0x6ff, 'Arabic'], [0x750, 0x77f, 'Arabic'], [0x900, 0x97f, 'Devanagari'],
  [0x980, 0x9ff, 'Bengali'], [0xe00, 0xe7f, 'Thai'], [0x10a0, 0x10ff, 'Georgian'], [0x1100, 0x11ff, 'Hangul'], [0x1e00, 0x1eff, 'Latin'],
  [0x1f00, 0x1fff, 'Greek'], [0x3040, 0x309f, 'Kana'], [0x30a0, 0x30ff, 'Kana'], [0x3130, 0x318f, 'Hangul'], [0x3400, 0x4dbf, 'Han'],
  [0x4e00, 0x9fff, 'Han'], [0xac00, 0xd7af, 'Hangul'], [0xf900, 0xfaff, 'Han'], [0x20000, 0x2ebef, 'Han'],
];

// Writing systems that mix by nature: Japanese is kana with kanji, Korean may use hanja.
const companions: Partial<Record<Script, Script[]>> = { Kana: ['Han'], Hangul: ['Han'], Han: ['Kana'] };

interface LanguageSettings {
  expected: string;
  allowed: Script[];
  tolerance: number;
  penalty: number;
  scope: Scope;
  ignoreMath: boolean;
}

export const language: RewardComponent<LanguageSettings> = {
  name: 'language',
  description: 'Penalty for letters outside the expected script (switching languages mid-answer).',
  options: {
    expected: { type: 'string', default: 'auto', oneOf: ['auto', 'prompt', ...scripts], description: 'Expected script: "auto" (the completion\'s dominant one), "prompt" (the prompt\'s) or a script name.' },
    allowed: { type: 'list', default: ['Greek'], oneOf: scripts, description: 'Scripts allowed besides the expected one.' },
    tolerance: { type: 'number', default: 0.01, min: 0, max: 1, description: 'Foreign share of letters below which there is no penalty.' },
    penalty: { type: 'number', default: 1, min: 0, description: 'Penalty at a foreign share of 1.' },
    scope: { type: 'string', default: 'completion', oneOf: scopes, description: 'Which part of the completion to look at.' },
    ignoreMath: { type: 'boolean', default: true, description: 'Leave out $…$, \\(…\\), \\[…\\] and LaTeX commands.' },
  },
  prepare: (o, path) => languageSettings(o, path),
  score: (input, s) => {
    const counts = scriptCounts(prepareText(textInScope(input.completion, s.scope), s.ignoreMath));
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    if (total === 0) return 0;
    const expected = expectedScript(s.expected, counts, input.prompt ?? '', s.ignoreMath);
    if (!expected) return 0;
    const ok = new Set<Script>([expected, ...(companions[expected] ?? []), ...s.allowed]);
    let foreign = 0;
    for (const [script, n] of counts) if (!ok.has(script)) foreign += n;
    const share = foreign / total;
    if (share <= s.tolerance) return 0;
    return { value: -s.penalty * share, flags: ['script_switch'] };
  },
};

function languageSettings(o: Record<string, OptionValue>, path: string): LanguageSettings {
  if (o.expected === 'Other') throw new RewardSpecError(`${path}.expected`, '"Other" is not a script to expect');
  return {
    expected: o.expected as string,
    allowed: o.allowed as Script[],
    tolerance: o.tolerance as number,
    penalty: o.penalty as number,
    scope: o.scope as Scope,
    ignoreMath: o.ignoreMath as boolean,
  };
}

function prepareText(text: string, ignoreMath: boolean): string {
  if (!ignoreMath) return text;
  return text
    .replace(/\$\$[\s\S]*?\$\$|\$[^$]*\$|\\\([\s\S]*?\\\)|\\\[[\s\S]*?\\\]/g, ' ')
    .replace(/\\[A-Za-z]+/g, ' ')
    .replace(/<\/?[A-Za-z]+>/g, ' ');
}

/** Letters per script. */
export function scriptCounts(text: string): Map<Script, number> {
  const counts = new Map<Script, number>();
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x41) continue; // digits, spaces, punctuation: no script
    if (cp >= 0xd800 && cp <= 0xdbff) {
      cp = text.codePointAt(i)!;
      i++;
    }
    const script = scriptOf(cp);
    if (script) counts.set(script, (counts.get(script) ?? 0) + 1);
  }
  return counts;
}

const letter = /\p{L}/u;

function scriptOf(cp: number): Script | null {
  for (const [lo, hi, script] of ranges) {
    if (cp < lo) break;
    if (cp <= hi) return script;
  }
  return cp > 0x7f && letter.test(String.fromCodePoint(cp)) ? 'Other' : null;
}

function dominant(counts: Map<Script, number>): Script | null {
  let best: Script | null = null;
  let bestN = 0;
  for (const [s, n] of counts) {
    if (n > bestN && s !== 'Other') {
      best = s;
      bestN = n;
    }
  }
  return best;
}

function expectedScript(expected: string, counts: Map<Script, number>, prompt: string, ignoreMath: boolean): Script | null {
  if (expected === 'auto') return dominant(counts);
  if (expected === 'prompt') return dominant(scriptCounts(prepareText(prompt, ignoreMath))) ?? dominant(counts);
  return expected as Script;
}
