// From a dataset row to a prompt and its reference answer. Presets name the columns of the
// common hub layouts and how their answers are written; `fields` override the columns.
//   gsm8k          question; answer holds the worked solution, the final answer after "####"
//   math           problem; answer (MATH-500), else the last \boxed{} of solution (MATH)
//   prompt_answer  prompt; answer, as written
// A reference answer is normalised so that rewards compare it with a model's: "#### 1,200"
// gives "1200", "\boxed{\frac{1}{2}}" gives "\frac{1}{2}".
import { lastBoxed } from '../latex';
import { fieldText, type FieldSpec } from '../loaders';

/** How an answer is read out of a column's text. */
export type AnswerExtraction = 'gsm8k' | 'boxed' | 'as-is' | 'auto';

export interface AnswerColumn {
  field: FieldSpec;
  extract: AnswerExtraction;
}

export interface RowMapping {
  prompt: FieldSpec;
  /** Candidates in order: the first whose field the row has gives the answer. */
  answers: AnswerColumn[];
  /** The full worked solution (SFT's response). */
  response: FieldSpec;
}

export const datasetPresets: Record<string, RowMapping> = {
  gsm8k: { prompt: 'question', answers: [{ field: 'answer', extract: 'gsm8k' }], response: 'answer' },
  math: {
    prompt: 'problem',
    answers: [
      { field: 'answer', extract: 'as-is' },
      { field: 'solution', extract: 'boxed' },
    ],
    response: 'solution',
  },
  prompt_answer: { prompt: 'prompt', answers: [{ field: 'answer', extract: 'as-is' }], response: 'response' },
};

/** The mapping of `preset` (default prompt_answer) with `fields` (prompt, answer, response) put over it. */
export function rowMapping(preset = '', fields: Record<string, string> = {}): RowMapping {
  const base = datasetPresets[preset || 'prompt_answer'];
  if (!base) throw new Error(`unknown dataset preset "${preset}" (known: ${Object.keys(datasetPresets).join(', ')})`);
  return {
    prompt: fields.prompt ?? base.prompt,
    // An answer column named by hand is read the way its text says (#### or \boxed{}, else as written).
    answers: fields.answer !== undefined ? [{ field: fields.answer, extract: 'auto' }] : base.answers,
    response: fields.response ?? base.response,
  };
}

/** The columns (top-level names) a mapping reads. */
export function mappedColumns(m: RowMapping): string[] {
  const names = new Set<string>();
  for (const spec of [m.prompt, m.response, ...m.answers.map((a) => a.field)]) {
    const paths = spec.includes('{') ? [...spec.matchAll(/\{([^{}]+)\}/g)].map((x) => x[1]) : [spec];
    for (const p of paths) names.add(p.trim().split('.')[0]);
  }
  return [...names];
}

export interface MappedRow {
  prompt: string;
  answer: string;
  /** The response column's text, when the row has it. */
  response?: string;
}

/** The prompt and reference answer of one row; an Error says what is wrong with it. */
export function mapRow(row: Record<string, unknown>, m: RowMapping): MappedRow {
  const problem = (msg: string) => new Error(msg);
  const prompt = fieldText(row, m.prompt, problem);
  if (prompt.trim() === '') throw problem(`the prompt from "${m.prompt}" is empty`);
  const column = m.answers.find((a) => hasField(row, a.field)) ?? m.answers[0];
  const answer = extractAnswer(fieldText(row, column.field, problem), column, problem);
  let response: string | undefined;
  if (hasField(row, m.response)) response = fieldText(row, m.response, problem);
  return { prompt, answer, response };
}

function hasField(row: Record<string, unknown>, spec: FieldSpec): boolean {
  try {
    fieldText(row, spec, (msg) => new Error(msg));
    return true;
  } catch {
    return false;
  }
}

function extractAnswer(text: string, column: AnswerColumn, problem: (msg: string) => Error): string {
  const how = column.extract === 'auto' ? (text.includes('####') ? 'gsm8k' : lastBoxed(text) !== undefined ? 'boxed' : 'as-is') : column.extract;
  let answer: string | undefined;
  if (how === 'gsm8k') {
    const at = text.lastIndexOf('####');
    if (at < 0) throw problem(`no final answer in "${column.field}" (GSM8K writes it after "####")`);
    answer = normaliseNumber(text.slice(at + 4));
  } else if (how === 'boxed') {
    answer = lastBoxed(text);
    if (answer === undefined) throw problem(`no \\boxed{} answer in "${column.field}"`);
  } else {
    answer = text;
  }
  answer = answer.trim();
  if (answer === '') throw problem(`the answer from "${column.field}" is empty`);
  return answer;
}

// "1,200" and "1200." are 1200; anything else is kept as written.
function normaliseNumber(text: string): string {
  const t = text.trim().replace(/\.$/, '');
  return /^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$/.test(t) ? t.replace(/,/g, '') : t;
}
