// A user's dataset as an endless stream of (prompt, reference answer) items: the split's files
// in name order, each read a row group at a time, starting over at the end (an epoch). The
// cursor counts rows taken (bad ones too), so a stream opened again at a saved cursor goes on
// from the same row: whole files and row groups before it are passed over by their row counts
// (Parquet's footer), not read.
import { DataFileError } from '../loaders';
import { mappedColumns, mapRow, rowMapping } from './presets';
import { openShard, RowResult, Shard } from './shards';
import { splitFiles } from './split-files';

export interface DatasetOptions {
  /** A .parquet / .jsonl file, or a directory holding the dataset's files. */
  path: string;
  /** The split to read from a directory (default "train"). */
  split?: string;
  /** gsm8k, math or prompt_answer (default). */
  preset?: string;
  /** Overrides of the preset's columns: prompt, answer, response. */
  fields?: Record<string, string>;
  /** Skip and count rows that cannot be mapped, instead of stopping with an error. */
  skipBadRows?: boolean;
  /** Told of each skipped row (or row group). */
  onSkip?(problem: string, rows: number): void;
}

export interface DatasetItem {
  prompt: string;
  /** The reference answer, normalised (GSM8K's number after ####, MATH's last \boxed{}). */
  answer: string;
  /** The worked solution, when the row has one (for SFT). */
  response?: string;
  /** File and row it came from. */
  where: string;
}

export interface DatasetStream {
  readonly files: readonly string[];
  /** Rows taken so far, across epochs: the position to resume from. */
  readonly cursor: number;
  /** Rows skipped as bad so far. */
  readonly skipped: number;
  /** Rows in one pass over the split (known after the first next()). */
  readonly rows: number | undefined;
  /** Rows in one pass over the split (reads the Parquet footers, counts the JSONL lines). */
  size(): Promise<number>;
  next(): Promise<DatasetItem>;
}

interface Segment {
  shard: Shard;
  group: number;
  /** Index of the group's first row in the split. */
  start: number;
  rows: number;
}

/** The stream of `options`' split from row `cursor` on (the files are listed now, read on demand). */
export function openDataset(options: DatasetOptions, cursor = 0): DatasetStream {
  const files = splitFiles(options.path, options.split || 'train');
  const mapping = rowMapping(options.preset, options.fields);
  const columns = mappedColumns(mapping);
  const shards = files.map(openShard);
  let segments: Segment[] | undefined;
  let total = 0;
  let position = cursor;
  let skipped = 0;
  let reading: { rows: AsyncGenerator<RowResult>; end: number } | undefined;

  const layout = async () => {
    const out: Segment[] = [];
    for (const shard of shards) {
      for (const [group, rows] of (await shard.groups()).entries()) {
        if (rows > 0) out.push({ shard, group, start: total, rows });
        total += rows;
      }
    }
    if (total === 0) throw new DataFileError(options.path, undefined, `split "${options.split || 'train'}" holds no rows`);
    return out;
  };

  // Opens the row group that holds `position`, from that row on.
  const seek = () => {
    const epochStart = position - (position % total);
    const at = position % total;
    const segment = segments!.find((s) => at < s.start + s.rows)!;
    reading = { rows: segment.shard.rows(segment.group, at - segment.start, columns), end: epochStart + segment.start + segment.rows };
  };

  const bad = (problem: string, where: string, rows: number) => {
    if (!options.skipBadRows) throw new Error(`${where}: ${problem} (skip_bad_rows: true skips such rows)`);
    skipped += rows;
    options.onSkip?.(`${where}: ${problem}`, rows);
  };

  return {
    files,
    get cursor() {
      return position;
    },
    get skipped() {
      return skipped;
    },
    get rows() {
      return segments ? total : undefined;
    },
    async size() {
      segments ??= await layout();
      return total;
    },
    async next() {
      segments ??= await layout();
      let sinceGood = 0;
      for (;;) {
        if (sinceGood >= total) throw new DataFileError(options.path, undefined, `no usable row in split "${options.split || 'train'}" (${skipped} skipped)`);
        if (!reading) seek();
        const r = await reading!.rows.next();
        if (r.done) {
          // A group that gave fewer rows than its footer says still ends where the footer says.
          position = reading!.end;
          reading = undefined;
          continue;
        }
        const v = r.value;
        if (v.kind === 'bad') {
          position += v.rows;
          sinceGood += v.rows;
          bad(v.problem, v.where, v.rows);
          continue;
        }
        position++;
        sinceGood++;
        try {
          return { ...mapRow(v.row, mapping), where: v.where };
        } catch (err) {
          bad((err as Error).message, v.where, 1);
        }
      }
    },
  };
}
