// The files of a dataset as row groups: a Parquet file's own row groups (read one at a time,
// only the columns wanted, through hyparquet and its snappy / zstd / gzip / brotli / lz4
// decompressors), a JSONL file as one group of its non-blank lines (read line by line). Rows
// that cannot be read come out as problems with where they are, so the caller decides whether
// they stop the run or are skipped.
import type * as Hyparquet from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as HyparquetCompressors from 'hyparquet-compressors' with { 'resolution-mode': 'import' };
import { DataFileError, lineText, readLineBytes } from '../loaders';

// ES modules only; this workspace compiles to CommonJS, so the values come in through require
// (Node >= 20.19 loads an ES module that way) and the types type-only.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } = require('hyparquet') as typeof Hyparquet;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { compressors } = require('hyparquet-compressors') as typeof HyparquetCompressors;

export type RowResult =
  | { kind: 'row'; row: Record<string, unknown>; where: string }
  /** `rows` rows that cannot be read (a whole row group when its pages do not decode). */
  | { kind: 'bad'; problem: string; where: string; rows: number };

export interface Shard {
  readonly file: string;
  /** Rows in each row group. */
  groups(): Promise<number[]>;
  /** The rows of group `g` from its row `from` on; `columns` are the top-level columns wanted. */
  rows(g: number, from: number, columns: readonly string[]): AsyncGenerator<RowResult>;
}

export function openShard(file: string): Shard {
  return file.endsWith('.parquet') ? parquetShard(file) : jsonlShard(file);
}

function parquetShard(file: string): Shard {
  let opened: Promise<{ buffer: Hyparquet.AsyncBuffer; metadata: Hyparquet.FileMetaData; columns: string[] }> | undefined;
  const open = () =>
    (opened ??= (async () => {
      let buffer: Hyparquet.AsyncBuffer;
      let metadata: Hyparquet.FileMetaData;
      try {
        buffer = await asyncBufferFromFile(file);
        metadata = await parquetMetadataAsync(buffer);
      } catch (err) {
        throw new DataFileError(file, undefined, `not a readable Parquet file: ${(err as Error).message}`);
      }
      return { buffer, metadata, columns: parquetSchema(metadata).children.map((c) => c.element.name) };
    })());
  return {
    file,
    async groups() {
      return (await open()).metadata.row_groups.map((g) => Number(g.num_rows));
    },
    async *rows(g, from, wanted) {
      const { buffer, metadata, columns } = await open();
      const present = wanted.filter((c) => columns.includes(c));
      if (present.length === 0) throw new DataFileError(file, undefined, `has none of the columns ${wanted.map((c) => `"${c}"`).join(', ')} (its columns: ${columns.join(', ')})`);
      const first = metadata.row_groups.slice(0, g).reduce((n, x) => n + Number(x.num_rows), 0);
      const count = Number(metadata.row_groups[g].num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file: buffer, metadata, columns: present, rowStart: first + from, rowEnd: first + count, rowFormat: 'object', compressors });
      } catch (err) {
        yield { kind: 'bad', problem: `cannot decode: ${(err as Error).message}`, where: `${file}: row group ${g}`, rows: count - from };
        return;
      }
      for (let i = 0; i < rows.length; i++) yield { kind: 'row', row: rows[i], where: `${file}: row group ${g}, row ${first + from + i}` };
    },
  };
}

// A JSONL file's rows are its non-blank lines; counting them reads the file once, without parsing.
function jsonlShard(file: string): Shard {
  let counted: number | undefined;
  const blank = (bytes: Buffer) => bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d);
  return {
    file,
    async groups() {
      if (counted === undefined) {
        counted = 0;
        for (const { bytes } of readLineBytes(file)) if (!blank(bytes)) counted++;
      }
      return [counted];
    },
    async *rows(_g, from) {
      let index = 0;
      for (const { bytes, line } of readLineBytes(file)) {
        if (blank(bytes) || index++ < from) continue;
        const where = `${file}:${line}`;
        const text = lineText(bytes);
        if (text === null) {
          yield { kind: 'bad', problem: 'not valid UTF-8', where, rows: 1 };
          continue;
        }
        let row: unknown;
        try {
          row = JSON.parse(text);
        } catch (err) {
          yield { kind: 'bad', problem: `not valid JSON: ${(err as Error).message}`, where, rows: 1 };
          continue;
        }
        if (row === null || typeof row !== 'object' || Array.isArray(row)) yield { kind: 'bad', problem: 'not a JSON object', where, rows: 1 };
        else yield { kind: 'row', row: row as Record<string, unknown>, where };
      }
    },
  };
}
