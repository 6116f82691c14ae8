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

/** The text `spec` makes of `record` (a field, a dotted path, or a template); `where` makes the error when it cannot. */
export function fieldText(record: unknown, spec: FieldSpec, where: (msg: string) => Error): string {
  const one = (path: string): string => {
    const v = lookup(record, path.trim());
    if (v === undefined || v === null) throw where(`field "${path.trim()}" is missing`);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
    throw where(`field "${path.trim()}" is ${Array.isArray(v) ? 'an array' : 'an object'}, not text`);
  };
  return spec.includes('{') ? spec.replace(/\{([^{}]+)\}/g, (_, path: string) => one(path)) : one(spec);
}

const chunkBytes = 1 << 20;

/**
 * The lines of a file as bytes (without their \n), read in chunks so a large file is never
 * held whole; `line` counts from 1.
 */
export function* readLineBytes(file: string): Generator<{ bytes: Buffer; line: number }> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new DataFileError(file, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const buffer = Buffer.alloc(chunkBytes);
  let pending: Buffer[] = [];
  let line = 0;
  const take = (): Buffer => {
    line++;
    const bytes = pending.length === 1 ? pending[0] : Buffer.concat(pending);
    pending = [];
    return bytes;
  };
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buffer, 0, chunkBytes, null);
      } catch (err) {
        throw new DataFileError(file, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (n === 0) break;
      const chunk = buffer.subarray(0, n);
      let from = 0;
      for (let nl = chunk.indexOf(0x0a, from); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        pending.push(Buffer.from(chunk.subarray(from, nl)));
        yield { bytes: take(), line };
        from = nl + 1;
      }
      if (from < n) pending.push(Buffer.from(chunk.subarray(from)));
    }
    // A last line without a trailing newline.
    if (pending.length > 0) yield { bytes: take(), line };
  } finally {
    fs.closeSync(fd);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A line's text (a trailing \r dropped), or null when its bytes are not valid UTF-8. */
export function lineText(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes).replace(/\r$/, '');
  } catch {
    return null;
  }
}

/**
 * The lines of a file (without their \n or \r\n), read in chunks so a large file is never
 * held whole, each decoded as strict UTF-8 so a bad byte is reported with its line.
 */
export function* readLines(file: string): Generator<{ text: string; line: number }> {
  for (const { bytes, line } of readLineBytes(file)) {
    const text = lineText(bytes);
    if (text === null) throw new DataFileError(file, line, 'not valid UTF-8');
    yield { text, line };
  }
}

function* jsonlRecords(file: string): Generator<{ record: Record<string, unknown>; line: number }> {
  for (const { text, line } of readLines(file)) {
    if (text.trim().length === 0) continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (err) {
      throw new DataFileError(file, line, `not valid JSON: ${(err as Error).message}`);
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new DataFileError(file, line, `expected a JSON object, got ${Array.isArray(record) ? 'an array' : JSON.stringify(record)}`);
    }
    yield { record: record as Record<string, unknown>, line };
  }
}

/** Documents from a JSONL file, text taken through the mapping, read as they are needed. */
export function* streamJsonlDocuments(file: string, mapping: JsonlDocumentMapping, options: LoaderOptions = {}): Generator<Document> {
  for (const { record, line } of jsonlRecords(file)) {
    const where = (msg: string) => new DataFileError(file, line, msg);
    const text = fieldText(record, mapping.text, where);
    if (text.length === 0) {
      if (options.skipEmpty) continue;
      throw where(`text from "${mapping.text}" is empty`);
    }
    yield { text, source: options.source ?? file };
  }
}

/** All documents of a JSONL file (so a bad record fails now, not mid-run). */
export function loadJsonlDocuments(file: string, mapping: JsonlDocumentMapping, options: LoaderOptions = {}): Document[] {
  return [...streamJsonlDocuments(file, mapping, options)];
}

/** Prompt/response pairs from a JSONL file (e.g. for SFT), read as they are needed. */
export function* streamJsonlPairs(file: string, mapping: JsonlPairMapping, options: LoaderOptions = {}): Generator<PromptResponse> {
  for (const { record, line } of jsonlRecords(file)) {
    const where = (msg: string) => new DataFileError(file, line, msg);
    const prompt = fieldText(record, mapping.prompt, where);
    const response = fieldText(record, mapping.response, where);
    if (prompt.length === 0 || response.length === 0) {
      if (options.skipEmpty) continue;
      throw where(`${prompt.length === 0 ? `prompt from "${mapping.prompt}"` : `response from "${mapping.response}"`} is empty`);
    }
    yield { prompt, response, source: options.source ?? file };
  }
}

/** All prompt/response pairs of a JSONL file. */
export function loadJsonlPairs(file: string, mapping: JsonlPairMapping, options: LoaderOptions = {}): PromptResponse[] {
  return [...streamJsonlPairs(file, mapping, options)];
}

export interface TextLoaderOptions extends LoaderOptions {
  /**
   * How a text file divides into documents: 'file' (all of it), 'paragraph' (blocks
   * separated by blank lines; the default) or 'line'.
   */
  split?: 'file' | 'paragraph' | 'line';
}

/** Documents from a plain UTF-8 text file, read as they are needed. */
export function* streamTextDocuments(file: string, options: TextLoaderOptions = {}): Generator<Document> {
  const source = options.source ?? file;
  const split = options.split ?? 'paragraph';
  if (split !== 'file' && split !== 'paragraph' && split !== 'line') throw new DataFileError(file, undefined, `unknown split ${JSON.stringify(split)} (file, paragraph or line)`);
  let any = false;
  let block: string[] = [];
  const flush = function* (): Generator<Document> {
    const text = block.join('\n').trim();
    block = [];
    if (text.length > 0) {
      any = true;
      yield { text, source };
    }
  };
  for (const { text } of readLines(file)) {
    if (split === 'line') {
      block = [text];
      yield* flush();
    } else if (split === 'paragraph' && text.trim().length === 0) {
      yield* flush();
    } else {
      block.push(text);
    }
  }
  yield* flush();
  if (!any) throw new DataFileError(file, undefined, 'holds no text');
}

/** All documents of a plain UTF-8 text file. */
export function loadTextDocuments(file: string, options: TextLoaderOptions = {}): Document[] {
  return [...streamTextDocuments(file, options)];
}
