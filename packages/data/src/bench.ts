// bench:datasets — what streaming a Parquet dataset a row group at a time costs, against
// reading the same file whole (hyparquet's parquetReadObjects over every row), side by side on
// one machine. Each way runs in a fresh process, so its peak resident memory is its own; a
// process that only loads the modules gives the baseline both are measured above.
//
//   node packages/data/dist/bench.js [--rows 200000] [--group 2000] [--json]
import type * as Hyparquet from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as Compressors from 'hyparquet-compressors' with { 'resolution-mode': 'import' };
import type * as Writer from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDataset } from './datasets/dataset';

type Mode = 'baseline' | 'stream' | 'whole';

interface Measured {
  rows: number;
  seconds: number;
  maxRssMb: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

// GSM8K-sized rows: a question of ~200 characters, a worked answer of ~300.
function writeDataset(file: string, rows: number, group: number): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parquetWriteBuffer } = require('hyparquet-writer') as typeof Writer;
  const question = (i: number) => `Problem ${i}: a shop sells ${i % 97} boxes of ${i % 13} pens each and ${i % 31} loose pens. ` + 'How many pens does it sell in all, counting every box and every loose pen it has on the shelf today?';
  const answer = (i: number) => `Each box holds ${i % 13} pens, so the boxes hold ${(i % 97) * (i % 13)} pens. ` + `Adding the ${i % 31} loose pens gives ${(i % 97) * (i % 13) + (i % 31)} pens in all, checked twice by counting again.\n#### ${(i % 97) * (i % 13) + (i % 31)}`;
  const ids = Array.from({ length: rows }, (_, i) => i);
  const columnData = [
    { name: 'question', type: 'STRING' as const, data: ids.map(question) },
    { name: 'answer', type: 'STRING' as const, data: ids.map(answer) },
  ];
  fs.writeFileSync(file, new Uint8Array(parquetWriteBuffer({ columnData, rowGroupSize: group })));
}

async function measure(mode: Mode, file: string): Promise<Measured> {
  const t0 = performance.now();
  let rows = 0;
  if (mode === 'stream') {
    const stream = openDataset({ path: file, preset: 'gsm8k' });
    const total = await stream.size();
    for (; rows < total; rows++) await stream.next();
  } else if (mode === 'whole') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { asyncBufferFromFile, parquetReadObjects } = require('hyparquet') as typeof Hyparquet;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { compressors } = require('hyparquet-compressors') as typeof Compressors;
    const all = await parquetReadObjects({ file: await asyncBufferFromFile(file), columns: ['question', 'answer'], rowFormat: 'object', compressors });
    rows = all.length;
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('hyparquet');
    openDataset({ path: file, preset: 'gsm8k' });
  }
  return { rows, seconds: (performance.now() - t0) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 };
}

async function main(): Promise<void> {
  const mode = process.env.TEMPER_BENCH_MODE as Mode | undefined;
  if (mode) {
    process.stdout.write(JSON.stringify(await measure(mode, process.env.TEMPER_BENCH_FILE!)) + '\n');
    return;
  }
  const rows = arg('rows', 200000);
  const group = arg('group', 2000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-bench-datasets-'));
  try {
    const file = path.join(dir, 'train-00000-of-00001.parquet');
    writeDataset(file, rows, group);
    const run = (m: Mode): Measured => JSON.parse(execFileSync(process.execPath, [__filename], { env: { ...process.env, TEMPER_BENCH_MODE: m, TEMPER_BENCH_FILE: file } }).toString());
    const [baseline, stream, whole] = (['baseline', 'stream', 'whole'] as const).map(run);
    const above = (m: Measured) => Math.round((m.maxRssMb - baseline.maxRssMb) * 10) / 10;
    const result = {
      rows,
      rows_per_group: group,
      file_mb: Math.round((fs.statSync(file).size / 2 ** 20) * 10) / 10,
      stream: { rows_per_s: Math.round(stream.rows / stream.seconds), rss_above_baseline_mb: above(stream) },
      whole_file: { rows_per_s: Math.round(whole.rows / whole.seconds), rss_above_baseline_mb: above(whole) },
      memory_ratio_whole_to_stream: Math.round((above(whole) / Math.max(above(stream), 0.1)) * 10) / 10,
      speed_ratio_stream_to_whole: Math.round((stream.rows / stream.seconds / (whole.rows / whole.seconds)) * 100) / 100,
    };
    if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(result) + '\n');
    else process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:datasets: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
