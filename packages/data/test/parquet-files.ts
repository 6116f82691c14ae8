// Parquet files written by the tests themselves (hyparquet-writer), compressed the ways hub
// datasets are: snappy, zstd (by the zstd command, which Node 20 lacks) and gzip.
import type * as Hyparquet from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as Writer from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parquetWriteBuffer } = require('hyparquet-writer') as typeof Writer;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parquetMetadata } = require('hyparquet') as typeof Hyparquet;

export type Codec = 'SNAPPY' | 'ZSTD' | 'GZIP' | 'UNCOMPRESSED';

const compressors = {
  ZSTD: (input: Uint8Array) => new Uint8Array(execFileSync('zstd', ['-q', '-c', '-3'], { input })),
  GZIP: (input: Uint8Array) => new Uint8Array(zlib.gzipSync(input)),
};

/** Writes `rows` (string columns; null for a missing value) as a Parquet file with `rowGroupSize` rows per group. */
export function writeParquet(file: string, rows: Record<string, string | null>[], options: { codec?: Codec; rowGroupSize?: number } = {}): void {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const columnData = names.map((name) => ({ name, type: 'STRING' as const, nullable: true, data: rows.map((r) => r[name] ?? null) }));
  const buffer = parquetWriteBuffer({ columnData, codec: options.codec ?? 'SNAPPY', compressors, rowGroupSize: options.rowGroupSize ?? 1000 });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, new Uint8Array(buffer));
}

function footer(file: string): Hyparquet.FileMetaData {
  const bytes = fs.readFileSync(file);
  return parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The codec each column chunk of a Parquet file was written with. */
export function codecsOf(file: string): string[] {
  return footer(file).row_groups.flatMap((g) => g.columns.map((c) => c.meta_data!.codec));
}

/** Overwrites the first page of every column chunk of row group `g` with garbage (the footer stays intact). */
export function corruptRowGroup(file: string, g: number): void {
  const bytes = fs.readFileSync(file);
  for (const c of footer(file).row_groups[g].columns) {
    const at = Number(c.meta_data!.dictionary_page_offset ?? c.meta_data!.data_page_offset);
    bytes.fill(0xff, at, at + 24);
  }
  fs.writeFileSync(file, bytes);
}
