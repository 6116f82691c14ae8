import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { emptyMixtureStats, mixDocuments, mixtureFromSources, openDocumentSource, openPairs, presetMixture, presetMixtureNames, splitOf, taskMixStream, type PresetMixture } from '@temper/data';

const take = <T>(it: Iterator<T>, n: number): T[] => Array.from({ length: n }, () => it.next().value as T);

describe('data sources from a run spec', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-src-'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'alpha\n\nbeta\n');
    fs.writeFileSync(path.join(dir, 'pairs.jsonl'), '{"q": "2+2?", "a": "4"}\n{"q": "3+3?", "a": "6"}\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('open built-in corpora with their fields', () => {
    const qa = openDocumentSource({ name: 'qa', uri: 'builtin:qa-short-cot', fields: { difficulty: '1', tasks: 'sorting' } }, { seed: 1 });
    for (const d of take(qa.open(), 20)) expect(d.text).toMatch(/^Q: Sort ascending: \d \d \d\nA: <think>/);
    const plain = openDocumentSource({ name: 'ins', uri: 'builtin:instructions', fields: { format: 'plain' } }, { seed: 1 });
    for (const d of take(plain.open(), 20)) expect(d.text).not.toContain('<answer>');
    // Re-opening a built-in starts the same stream again.
    const web = openDocumentSource({ name: 'web', uri: 'builtin:web-math' }, { seed: 1 });
    expect(take(web.open(), 3)).toEqual(take(web.open(), 3));
  });

  it('open files relative to a base directory', () => {
    const text = openDocumentSource({ name: 'notes', uri: 'notes.txt' }, { seed: 1, baseDir: dir });
    expect(take(text.open(), 2)).toEqual([
      { text: 'alpha', source: 'notes' },
      { text: 'beta', source: 'notes' },
    ]);
    const pairs = openDocumentSource({ name: 'p', uri: 'pairs.jsonl', fields: { prompt: 'q', response: 'a' } }, { seed: 1, baseDir: dir, render: (p, r) => `${p} => ${r}` });
    expect(take(pairs.open(), 2).map((d) => d.text)).toEqual(['2+2? => 4', '3+3? => 6']);
    const docs = openDocumentSource({ name: 'd', uri: 'pairs.jsonl', fields: { text: '{q}{a}' } }, { seed: 1, baseDir: dir });
    expect(take(docs.open(), 1)[0].text).toBe('2+2?4');
  });

  it('explain what is wrong with a source', () => {
    expect(() => openDocumentSource({ name: 'x', uri: 'builtin:poetry' }, { seed: 1 })).toThrow(/data source "x" \(builtin:poetry\): unknown built-in corpus "poetry"/);
    expect(() => openDocumentSource({ name: 'x', uri: 'builtin:qa-long-cot', fields: { difficulty: '1,two' } }, { seed: 1 })).toThrow(/fields.difficulty must list whole numbers/);
    expect(() => openDocumentSource({ name: 'x', uri: 'builtin:qa-long-cot', fields: { tasks: 'chess' } }, { seed: 1 })).toThrow(/unknown task "chess"/);
    expect(() => openDocumentSource({ name: 'x', uri: 'pairs.jsonl' }, { seed: 1, baseDir: dir })).toThrow(/needs fields.text, or fields.prompt and fields.response/);
    expect(() => openDocumentSource({ name: 'x', uri: 'missing.txt' }, { seed: 1, baseDir: dir })).toThrow(/missing\.txt: cannot read: ENOENT/);
    expect(() => mixtureFromSources([{ name: 'w', uri: 'builtin:web-math' }], { seed: 1 })).toThrow(/needs a weight/);
  });

  it('give SFT pairs from built-ins, tasks and JSONL files', () => {
    const arith = take(openPairs({ name: 'a', uri: 'builtin:arithmetic', fields: { difficulty: '1,2' } }, { seed: 1 }), 30);
    for (const p of arith) expect(p.response).toMatch(/^<think>[^<]+<\/think><answer>\d+<\/answer>$/);
    const long = take(openPairs({ name: 'a', uri: 'builtin:countdown', fields: { style: 'long' } }, { seed: 1 }), 5);
    for (const p of long) expect(p.response).toContain('The numbers are');
    const file = take(openPairs({ name: 'f', uri: 'pairs.jsonl', fields: { prompt: 'q', response: 'a' } }, { seed: 1, baseDir: dir }), 3);
    expect(file.map((p) => p.response)).toEqual(['4', '6', '4']);
    expect(take(openPairs({ name: 'i', uri: 'builtin:instructions' }, { seed: 1 }), 1)[0].source).toBe('instructions');
    expect(() => take(openPairs({ name: 'x', uri: 'builtin:web-math' }, { seed: 1 }), 1)).toThrow(/unknown built-in "web-math" for prompt\/response pairs/);
    expect(() => take(openPairs({ name: 'x', uri: 'notes.txt' }, { seed: 1, baseDir: dir }), 1)).toThrow(/SFT pairs come from/);
  });

  it('build the preset mixtures, whose shares hold when sampled', () => {
    for (const name of presetMixtureNames) {
      const specs = presetMixture(name, { difficulty: '1,2' });
      expect(specs.reduce((s, x) => s + (x.weight ?? 0), 0)).toBeCloseTo(1, 10);
      for (const s of specs) if (s.uri.startsWith('builtin:qa-')) expect(s.fields).toEqual({ difficulty: '1,2' });
      const stats = emptyMixtureStats();
      take(mixDocuments(mixtureFromSources(specs, { seed: 1 }), { seed: 1, stats }), 2000);
      for (const s of specs) {
        const p = s.weight!;
        // Binomial(2000, p): within 4 standard deviations.
        expect(Math.abs((stats.documents[s.name] ?? 0) - 2000 * p)).toBeLessThan(4 * Math.sqrt(2000 * p * (1 - p)));
      }
    }
    expect(presetMixture('long-cot').map((s) => s.name)).toContain('qa-long-cot');
    expect(() => presetMixture('medium' as PresetMixture)).toThrow(/unknown preset mixture/);
  });
});

describe('taskMixStream', () => {
  it('mixes tasks by weight within one split, deterministically', () => {
    const opts = { tasks: [{ task: 'arithmetic' as const, difficulty: 1, weight: 3 }, { task: 'countdown' as const, difficulty: [1, 2] }], split: 'eval' as const, seed: 4 };
    const items = take(taskMixStream(opts), 4000);
    expect(take(taskMixStream(opts), 50)).toEqual(items.slice(0, 50));
    const arith = items.filter((x) => x.task === 'arithmetic').length;
    // Binomial(4000, 0.75): sd = 27.4.
    expect(Math.abs(arith - 3000)).toBeLessThan(4 * 27.4);
    for (const x of items) expect(splitOf(x.canonical)).toBe('eval');
    expect(() => take(taskMixStream({ ...opts, tasks: [] }), 1)).toThrow(/at least one task/);
    expect(() => take(taskMixStream({ ...opts, tasks: [{ task: 'sorting', difficulty: 1, weight: 0 }] }), 1)).toThrow(/not all 0/);
    const onlyModular = take(taskMixStream({ ...opts, tasks: [{ task: 'sorting', difficulty: 1, weight: 0 }, { task: 'modular', difficulty: 1 }] }), 200);
    expect(new Set(onlyModular.map((x) => x.task))).toEqual(new Set(['modular']));
  });
});
