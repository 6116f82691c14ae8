// Users' own data: JSONL (one JSON object per line) and plain text. A field mapping says
// where the text lives, so datasets need no conversion: a field name, a dotted path into
// nested objects and arrays ("conversation.0.content"), or a template that joins several
// fields ("{question}\n{answer}"). Every error names the file and the line.
import * as fs from 'node:fs';
import type { Document, PromptResponse } from './corpora/types';

/** Where a value comes from in a JSON record: a path, or a template of {path} placeholders. */
export type FieldSpec = string;

export interface JsonlDocumentMapping {
  text: FieldSpec;
}

export interface JsonlPairMapping {
  prompt: FieldSpec;
  response: FieldSpec;
}

export interface LoaderOptions {
  /** Name recorded as each item's source; defaults to the file path. */
  source?: string;
  /** Records whose mapped text is empty are skipped instead of refused. Default false. */
  skipEmpty?: boolean;
}

export class DataFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    message: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${message}`);
    this.name = 'DataFileError';
  }
}

function lookup(record: unknown, path: string): unknown {
  let v: unknown = record;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

function resolve(record: unknown, spec: FieldSpec, where: (msg: string) => Error): string {
  const one = (path: string): string => {
    const v = lookup(record, path.trim());
    if (v === undefined || v === null) throw where(`field "${path.trim()}" is missing`);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw where(`field "${path.trim()}" is ${Array.isArray(v) ? 'an array' : 'an object'}, not text`);
  };
  return spec.includes('{') ? spec.replace(/\{([^{}]+)\}/g, (_, path: string) => one(path)) : one(spec);
}

function readUtf8(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new DataFileError(file, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Find the line of the first bad byte so the user can fix it.
    let line = 1;
    for (let i = 0; i < bytes.length; i++) {
      const n = validUtf8Length(bytes, i);
      if (n === 0) throw new DataFileError(file, line, 'not valid UTF-8');
      if (bytes[i] === 0x0a) line++;
      i += n - 1;
    }
    throw new DataFileError(file, undefined, 'not valid UTF-8');
  }
}

// Length of the valid UTF-8 sequence starting at i, or 0 when it is not one.
function validUtf8Length(b: Buffer, i: number): number {
  const c = b[i];
  const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > b.length) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k] & 0xc0) !== 0x80) return 0;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(i, i + n));
  } catch {
    return 0;
  }
  return n;
}

function* jsonlRecords(file: string): Generator<{ record: Record<string, unknown>; line: number }> {
  const text = readUtf8(file);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim().length === 0) continue;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (err) {
      throw new DataFileError(file, i + 1, `not valid JSON: ${(err as Error).message}`);
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new DataFileError(file, i + 1, `expected a JSON object, got ${Array.isArray(record) ? 'an array' : JSON.stringify(record)}`);
    }
    yield { record: record as Record<string, unknown>, line: i + 1 };
  }
}

/** Documents from a JSONL file, text taken through the mapping. */
export function loadJsonlDocuments(file: string, mapping: JsonlDocumentMapping, options: LoaderOptions = {}): Document[] {
  const out: Document[] = [];
  for (const { record, line } of jsonlRecords(file)) {
    const where = (msg: string) => new DataFileError(file, line, msg);
    const text = resolve(record, mapping.text, where);
    if (text.length === 0) {
      if (options.skipEmpty) continue;
      throw where(`text from "${mapping.text}" is empty`);
    }
    out.push({ text, source: options.source ?? file });
  }
  return out;
}

/** Prompt/response pairs from a JSONL file (e.g. for SFT). */
export function loadJsonlPairs(file: string, mapping: JsonlPairMapping, options: LoaderOptions = {}): PromptResponse[] {
  const out: PromptResponse[] = [];
  for (const { record, line } of jsonlRecords(file)) {
    const where = (msg: string) => new DataFileError(file, line, msg);
    const prompt = resolve(record, mapping.prompt, where);
    const response = resolve(record, mapping.response, where);
    if (prompt.length === 0 || response.length === 0) {
      if (options.skipEmpty) continue;
      throw where(`${prompt.length === 0 ? `prompt from "${mapping.prompt}"` : `response from "${mapping.response}"`} is empty`);
    }
    out.push({ prompt, response, source: options.source ?? file });
  }
  return out;
}

export interface TextLoaderOptions extends LoaderOptions {
  /**
   * How a text file divides into documents: 'file' (all of it), 'paragraph' (blocks
   * separated by blank lines; the default) or 'line'.
   */
  split?: 'file' | 'paragraph' | 'line';
}

/** Documents from a plain UTF-8 text file. */
export function loadTextDocuments(file: string, options: TextLoaderOptions = {}): Document[] {
  const text = readUtf8(file).replace(/\r\n/g, '\n');
  const source = options.source ?? file;
  const split = options.split ?? 'paragraph';
  let pieces: string[];
  if (split === 'file') pieces = [text.trim()];
  else if (split === 'line') pieces = text.split('\n').map((l) => l.trim());
  else if (split === 'paragraph') pieces = text.split(/\n[ \t]*\n/).map((p) => p.trim());
  else throw new DataFileError(file, undefined, `unknown split ${JSON.stringify(split)} (file, paragraph or line)`);
  const docs = pieces.filter((p) => p.length > 0).map((p) => ({ text: p, source }));
  if (docs.length === 0) throw new DataFileError(file, undefined, 'holds no text');
  return docs;
}
