// Users' datasets: Parquet (snappy, zstd, gzip; several row groups) and JSONL files written
// here in the layouts hub datasets use, read as streams of (prompt, reference answer) through
// the presets, resumed at a cursor without reading what comes before, bad rows and corrupt
// files reported with where they are (or skipped and counted).
import { DataFileError, datasetFiles, lastBoxed, openDataset, rowMapping, mapRow, splitFiles, DatasetStream } from '@temper/data';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { codecsOf, corruptRowGroup, writeParquet } from './parquet-files';

const gsm8kRow = (i: number) => ({ question: `Tom has ${i} apples and buys ${i + 1000} more. How many now?`, answer: `${i} + ${i + 1000} = <<${i}+${i + 1000}=${2 * i + 1000}>>.\n#### ${(2 * i + 1000).toLocaleString('en-US')}` });

async function take(stream: DatasetStream, n: number) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await stream.next());
  return out;
}

describe('datasets', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-datasets-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const at = (...p: string[]) => path.join(root, ...p);

  describe('a GSM8K layout in Parquet shards (snappy, zstd, gzip)', () => {
    let dir: string;
    beforeAll(() => {
      dir = at('gsm8k');
      // main/ and socratic/ configurations, as the hub has them; train in two shards.
      writeParquet(path.join(dir, 'main', 'train-00000-of-00002.parquet'), Array.from({ length: 7 }, (_, i) => gsm8kRow(i)), { codec: 'SNAPPY', rowGroupSize: 3 });
      writeParquet(path.join(dir, 'main', 'train-00001-of-00002.parquet'), Array.from({ length: 5 }, (_, i) => gsm8kRow(7 + i)), { codec: 'ZSTD', rowGroupSize: 2 });
      writeParquet(path.join(dir, 'main', 'test-00000-of-00001.parquet'), Array.from({ length: 4 }, (_, i) => gsm8kRow(100 + i)), { codec: 'GZIP', rowGroupSize: 4 });
      writeParquet(path.join(dir, 'socratic', 'train-00000-of-00001.parquet'), [gsm8kRow(500)]);
      fs.writeFileSync(path.join(dir, 'README.md'), '# gsm8k\n');
    });

    it('writes what it claims: one codec per shard', () => {
      expect(new Set(codecsOf(path.join(dir, 'main', 'train-00000-of-00002.parquet')))).toEqual(new Set(['SNAPPY']));
      expect(new Set(codecsOf(path.join(dir, 'main', 'train-00001-of-00002.parquet')))).toEqual(new Set(['ZSTD']));
      expect(new Set(codecsOf(path.join(dir, 'main', 'test-00000-of-00001.parquet')))).toEqual(new Set(['GZIP']));
    });

    it('picks a split by file names, one configuration folder at a time', () => {
      expect(datasetFiles(dir)).toEqual([
        path.join('main', 'test-00000-of-00001.parquet'),
        path.join('main', 'train-00000-of-00002.parquet'),
        path.join('main', 'train-00001-of-00002.parquet'),
        path.join('socratic', 'train-00000-of-00001.parquet'),
      ]);
      expect(splitFiles(path.join(dir, 'main'), 'train').map((f) => path.basename(f))).toEqual(['train-00000-of-00002.parquet', 'train-00001-of-00002.parquet']);
      expect(() => splitFiles(dir, 'train')).toThrow(/split "train" has files in several folders \(main, socratic\): point path at one of them/);
      expect(() => splitFiles(path.join(dir, 'main'), 'validation')).toThrow(/no files of split "validation" .*found main\/|no files of split "validation" .*found test-00000/);
      expect(() => splitFiles(at('nowhere'), 'train')).toThrow(DataFileError);
    });

    it('reads every row of the split in order through the gsm8k preset, across shards, row groups and codecs', async () => {
      const stream = openDataset({ path: path.join(dir, 'main'), preset: 'gsm8k' });
      const items = await take(stream, 12);
      expect(stream.rows).toBe(12);
      expect(items.map((x) => x.answer)).toEqual(Array.from({ length: 12 }, (_, i) => String(2 * i + 1000)));
      expect(items[3].prompt).toBe(gsm8kRow(3).question);
      // The worked solution is there for SFT.
      expect(items[3].response).toBe(gsm8kRow(3).answer);
      expect(items[8].where).toBe(`${path.join(dir, 'main', 'train-00001-of-00002.parquet')}: row group 0, row 1`);
      // Then a new epoch from the first row.
      expect((await stream.next()).answer).toBe('1000');
      expect(stream.cursor).toBe(13);
      const test = openDataset({ path: path.join(dir, 'main'), split: 'test', preset: 'gsm8k' });
      expect((await take(test, 4)).map((x) => x.answer)).toEqual(['1200', '1202', '1204', '1206']);
    });

    it('resumes at a cursor with the same items as a stream that read up to it', async () => {
      const full = await take(openDataset({ path: path.join(dir, 'main'), preset: 'gsm8k' }), 30);
      for (const cursor of [0, 2, 3, 7, 11, 12, 25]) {
        const resumed = openDataset({ path: path.join(dir, 'main'), preset: 'gsm8k' }, cursor);
        expect(await take(resumed, 5)).toEqual(full.slice(cursor, cursor + 5));
        expect(resumed.cursor).toBe(cursor + 5);
      }
    });
  });

  describe('bad rows and corrupt files', () => {
    it('names the file, row group and row of a bad Parquet row, or skips and counts it', async () => {
      const file = at('bad-rows.parquet');
      const rows = Array.from({ length: 6 }, (_, i): Record<string, string | null> => gsm8kRow(i));
      rows[4] = { question: null, answer: '#### 3' };
      rows[5] = { question: 'no final answer here', answer: '42' };
      writeParquet(file, rows, { rowGroupSize: 3 });
      const strict = openDataset({ path: file, preset: 'gsm8k' });
      await take(strict, 4);
      await expect(strict.next()).rejects.toThrow(`${file}: row group 1, row 4: field "question" is missing (skip_bad_rows: true skips such rows)`);
      const skipped: string[] = [];
      const lenient = openDataset({ path: file, preset: 'gsm8k', skipBadRows: true, onSkip: (p) => skipped.push(p) });
      const items = await take(lenient, 5);
      // Rows 4 and 5 skipped: the fifth item is the next epoch's first row.
      expect(items.map((x) => x.answer)).toEqual(['1000', '1002', '1004', '1006', '1000']);
      expect(lenient.skipped).toBe(2);
      expect(skipped).toEqual([`${file}: row group 1, row 4: field "question" is missing`, `${file}: row group 1, row 5: no final answer in "answer" (GSM8K writes it after "####")`]);
      expect(lenient.cursor).toBe(7);
    });

    it('reports a corrupt row group, skips it when told, and never reads it when resuming past it', async () => {
      const file = at('corrupt-group.parquet');
      writeParquet(file, Array.from({ length: 9 }, (_, i) => gsm8kRow(i)), { codec: 'ZSTD', rowGroupSize: 3 });
      corruptRowGroup(file, 1);
      const strict = openDataset({ path: file, preset: 'gsm8k' });
      await take(strict, 3);
      await expect(strict.next()).rejects.toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: row group 1: cannot decode`));
      // From row 6 on, the corrupt group is passed over by its row count: no error.
      const resumed = openDataset({ path: file, preset: 'gsm8k' }, 6);
      expect((await take(resumed, 3)).map((x) => x.answer)).toEqual(['1012', '1014', '1016']);
      const lenient = openDataset({ path: file, preset: 'gsm8k', skipBadRows: true });
      expect((await take(lenient, 6)).map((x) => x.answer)).toEqual(['1000', '1002', '1004', '1012', '1014', '1016']);
      expect(lenient.skipped).toBe(3);
    });

    it('refuses a file that is not Parquet, naming it', async () => {
      const file = at('not-parquet.parquet');
      fs.writeFileSync(file, 'PAR1 this is not a parquet file at all');
      await expect(openDataset({ path: file }).next()).rejects.toThrow(`${file}: not a readable Parquet file`);
      const truncated = at('truncated.parquet');
      writeParquet(truncated, [gsm8kRow(1)]);
      fs.truncateSync(truncated, fs.statSync(truncated).size - 10);
      await expect(openDataset({ path: truncated, preset: 'gsm8k' }).next()).rejects.toThrow(`${truncated}: not a readable Parquet file`);
    });

    it('names the columns when the mapping finds none of them', async () => {
      const file = at('other-columns.parquet');
      writeParquet(file, [{ q: 'x', a: '1' }]);
      await expect(openDataset({ path: file, preset: 'gsm8k' }).next()).rejects.toThrow(`${file}: has none of the columns "question", "answer" (its columns: q, a)`);
      const mapped = openDataset({ path: file, fields: { prompt: 'q', answer: 'a' } });
      expect(await mapped.next()).toMatchObject({ prompt: 'x', answer: '1' });
    });

    it('reads JSONL line by line: bad lines are named by line number, and skipped when told', async () => {
      const file = at('rows.jsonl');
      fs.writeFileSync(file, ['{"prompt":"a","answer":1}', '', '{"prompt":"b"', '{"prompt":"c","answer":"3"}', '[1]', '{"prompt":"","answer":"4"}', '{"prompt":"e","answer":"5"}'].join('\n'));
      const strict = openDataset({ path: file });
      expect(await strict.next()).toMatchObject({ prompt: 'a', answer: '1', where: `${file}:1` });
      await expect(strict.next()).rejects.toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: not valid JSON`));
      const lenient = openDataset({ path: file, skipBadRows: true });
      expect((await take(lenient, 4)).map((x) => x.prompt)).toEqual(['a', 'c', 'e', 'a']);
      expect(lenient.skipped).toBe(3);
      expect(lenient.rows).toBe(6);
      // Resuming counts rows (blank lines are not rows).
      expect((await openDataset({ path: file, skipBadRows: true }, 2).next()).prompt).toBe('c');
      expect((await openDataset({ path: file, skipBadRows: true }, 3).next()).prompt).toBe('e');
    });

    it('stops when no row of the split can be used, instead of looping', async () => {
      const file = at('all-bad.jsonl');
      fs.writeFileSync(file, '{"x":1}\n{"x":2}\n');
      await expect(openDataset({ path: file, skipBadRows: true }).next()).rejects.toThrow(`${file}: no usable row in split "train" (2 skipped)`);
    });
  });

  describe('presets for the hub layouts', () => {
    it('math: the answer column when there is one (MATH-500), else the last \\boxed{} of the solution (MATH)', async () => {
      const dir = at('math500');
      fs.mkdirSync(dir);
      fs.writeFileSync(
        path.join(dir, 'test.jsonl'),
        [
          { problem: 'Compute 1/2 + 1/4.', solution: 'We get $\\boxed{\\frac{3}{4}}$.', answer: '\\frac{3}{4}', subject: 'Algebra', level: 2 },
          { problem: 'Find x.', solution: 'First \\boxed{1}, then really $x = \\boxed{\\left\\{ 2, \\frac{1}{3} \\right\\}}$.' },
        ]
          .map((r) => JSON.stringify(r))
          .join('\n') + '\n',
      );
      const items = await take(openDataset({ path: dir, split: 'test', preset: 'math' }), 2);
      expect(items.map((x) => x.answer)).toEqual(['\\frac{3}{4}', '\\left\\{ 2, \\frac{1}{3} \\right\\}']);
      const parquet = at('math', 'train-00000-of-00001.parquet');
      writeParquet(parquet, [{ problem: 'p', solution: 'so \\fbox{7}', level: 'Level 1' }, { problem: 'q', solution: 'no box' }]);
      const stream = openDataset({ path: at('math'), preset: 'math' });
      expect((await stream.next()).answer).toBe('7');
      await expect(stream.next()).rejects.toThrow('no \\boxed{} answer in "solution"');
    });

    it('fields override a preset\'s columns, templates included, and a named answer column is read the way its text says', () => {
      const m = rowMapping('gsm8k', { prompt: '{question}\nPut the final answer in \\boxed{}.', answer: 'final' });
      expect(mapRow({ question: 'What is 6*7?', final: 'so #### 42' }, m)).toEqual({ prompt: 'What is 6*7?\nPut the final answer in \\boxed{}.', answer: '42' });
      expect(mapRow({ question: 'q', final: 'it is \\boxed{x+1}' }, m).answer).toBe('x+1');
      expect(mapRow({ question: 'q', final: 12n }, m).answer).toBe('12');
      expect(() => rowMapping('squad')).toThrow(/unknown dataset preset "squad" \(known: gsm8k, math, prompt_answer\)/);
      expect(mapRow({ prompt: 'p', answer: ' 1,234 ' }, rowMapping()).answer).toBe('1,234');
      expect(mapRow({ question: 'q', answer: '#### 1,234.' }, rowMapping('gsm8k')).answer).toBe('1234');
    });

    it('finds the last \\boxed{} with nested braces', () => {
      expect(lastBoxed('a \\boxed{1} b \\boxed{\\frac{a}{b}}')).toBe('\\frac{a}{b}');
      expect(lastBoxed('\\boxed {x}')).toBe('x');
      expect(lastBoxed('\\boxed{unclosed')).toBeUndefined();
      expect(lastBoxed('none')).toBeUndefined();
    });
  });
});
