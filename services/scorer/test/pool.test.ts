// The scoring pool on real worker threads (the built dist/score-thread.js).
import * as path from 'node:path';
import { createRegistry, RewardSpecError } from '@temper/rewards';
import { boundedSpec, ScoringPool } from '../src/pool';

const fixtures = path.join(__dirname, 'fixtures');

describe('scoring pool', () => {
  let pool: ScoringPool;
  const replaced: string[] = [];
  beforeAll(() => {
    pool = new ScoringPool({
      threads: 2,
      itemTimeoutMs: 1000,
      chunkSize: 4,
      inlineMaxChars: 0, // everything on the threads here; inline scoring has its own tests below
      plugins: [path.join(fixtures, 'spin-plugin.js'), path.join(fixtures, 'exit-plugin.js')],
      onReplace: (r) => replaced.push(r),
    });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('returns one result per item, in order', async () => {
    const items = Array.from({ length: 50 }, (_, i) => ({ completion: `<think>t</think><answer>${i}</answer>`, reference: String(i % 2 ? i : i + 1) }));
    const results = await pool.score(undefined, items);
    expect(results).toHaveLength(50);
    results.forEach((r, i) => {
      expect(r.components).toEqual({ accuracy: i % 2 ? 1 : 0, format: 1 });
      expect(r.extractedAnswer).toBe(String(i));
    });
    expect(await pool.score(undefined, [])).toEqual([]);
  });

  it('refuses a bad spec before scoring, naming the field', async () => {
    await expect(pool.score({ components: [{ name: 'nope', weight: 1 }] }, [{ completion: '', reference: '1' }])).rejects.toThrow(RewardSpecError);
    await expect(pool.score({ components: [{ name: 'nope', weight: 1 }] }, [])).rejects.toThrow('spec.components[0].name');
  });

  it('times out a stuck item, flags it, replaces the thread and scores the rest', async () => {
    const spec = { components: [{ name: 'accuracy', weight: 1 }, { name: 'spin', weight: 1 }] };
    const items = Array.from({ length: 12 }, (_, i) => ({ completion: `${i === 5 ? 'SPIN ' : ''}<answer>${i}</answer>`, reference: String(i) }));
    const before = pool.stats.timeouts;
    const t0 = Date.now();
    const results = await pool.score(spec, items);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(results[5]).toEqual({ total: 0, components: { accuracy: 0, spin: 0 }, truncated: false, flags: ['timeout'], extractedAnswer: '' });
    results.forEach((r, i) => i !== 5 && expect([r.total, r.flags]).toEqual([2, []]));
    expect(pool.stats.timeouts).toBe(before + 1);
    expect(replaced).toContain('item timed out after 1000 ms');
    // and the pool keeps its size and keeps working
    expect(pool.threads).toBe(2);
    const again = await pool.score(spec, [{ completion: '<answer>1</answer>', reference: '1' }]);
    expect(again[0].total).toBe(2);
  });

  it('cuts off catastrophic backtracking in a spec\'s answer pattern', async () => {
    const spec = { components: [{ name: 'accuracy', weight: 1, options: { sources: [], pattern: '^(a+)+$' } }] };
    const results = await pool.score(spec, [
      { completion: 'a'.repeat(40) + 'b', reference: '1' },
      { completion: 'aaa', reference: 'aaa' },
    ]);
    expect(results.map((r) => [r.total, r.flags])).toEqual([[0, ['timeout']], [1, []]]);
  });

  it('survives two stuck items at once', async () => {
    const spec = { components: [{ name: 'spin', weight: 1 }] };
    const items = Array.from({ length: 8 }, (_, i) => ({ completion: i === 0 || i === 7 ? 'SPIN' : 'fine', reference: '1' }));
    const results = await pool.score(spec, items);
    expect(results.map((r) => r.flags.join())).toEqual(['timeout', '', '', '', '', '', '', 'timeout']);
  });

  it('a plugin cannot end its thread: process.exit is out of its sandbox’s reach, the item is flagged', async () => {
    const spec = { components: [{ name: 'exits', weight: 1 }] };
    const before = replaced.length;
    const [r] = await pool.score(spec, [{ completion: 'EXIT', reference: '1' }]);
    expect(r.flags).toContain('exits_failed');
    expect(r.components.exits).toBe(0);
    const ok = await pool.score(spec, [{ completion: 'fine', reference: '1' }]);
    expect(ok[0].total).toBe(1);
    expect(replaced.length).toBe(before);
    expect(pool.threads).toBe(2);
  });
});

describe('scoring small requests on the calling thread', () => {
  let pool: ScoringPool;
  beforeAll(() => {
    pool = new ScoringPool({ threads: 1, itemTimeoutMs: 1000, inlineMaxChars: 200, plugins: [path.join(fixtures, 'spin-plugin.js')] });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('scores a bounded spec inline up to the character limit, on the threads beyond it, with the same results', async () => {
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ completion: `<think>t</think><answer>${i}</answer>`, reference: String(i % 3) }));
    const spec = { components: [{ name: 'accuracy', weight: 1 }, { name: 'format', weight: 0.5, options: { partialCredit: 0.5 } }] };
    const before = pool.stats.scoredInline;
    const small = await pool.score(spec, items(4)); // 4 x 32 characters
    expect(pool.stats.scoredInline).toBe(before + 4);
    const large = await pool.score(spec, items(8)); // 256 characters: the threads
    expect(pool.stats.scoredInline).toBe(before + 4);
    expect(large.slice(0, 4)).toEqual(small);
  });

  it('sends specs that could take unbounded time to the threads, where the time limit holds', async () => {
    const before = pool.stats.scoredInline;
    const results = await pool.score({ components: [{ name: 'spin', weight: 1 }] }, [{ completion: 'SPIN', reference: '1' }]);
    expect(results[0].flags).toEqual(['timeout']);
    const pattern = { components: [{ name: 'accuracy', weight: 1, options: { sources: [], pattern: '^(a+)+$' } }] };
    const [r] = await pool.score(pattern, [{ completion: 'a'.repeat(40) + 'b', reference: '1' }]);
    expect(r.flags).toEqual(['timeout']);
    expect(pool.stats.scoredInline).toBe(before);
  });
});

describe('scoring pool memory limit', () => {
  // A time limit far off, so that only the heap limit can end the item (running a heap out
  // takes V8 a few full collections: about a second at 32 MiB on a loaded machine).
  let pool: ScoringPool;
  const replaced: string[] = [];
  beforeAll(() => {
    pool = new ScoringPool({ threads: 2, itemTimeoutMs: 60000, threadMemoryMb: 32, chunkSize: 3, inlineMaxChars: 0, plugins: [path.join(fixtures, 'hoard-plugin.js')], onReplace: (r) => replaced.push(r) });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('ends an item that allocates without bound at its thread’s heap limit, flags it and scores the rest', async () => {
    const spec = { components: [{ name: 'accuracy', weight: 1 }, { name: 'hoard', weight: 1 }] };
    const items = Array.from({ length: 6 }, (_, i) => ({ completion: `${i === 2 ? 'HOARD ' : ''}<answer>${i}</answer>`, reference: String(i) }));
    const results = await pool.score(spec, items);
    expect(results[2]).toEqual({ total: 0, components: { accuracy: 0, hoard: 0 }, truncated: false, flags: ['out_of_memory'], extractedAnswer: '' });
    results.forEach((r, i) => i !== 2 && expect([r.total, r.flags]).toEqual([2, []]));
    expect(pool.stats).toMatchObject({ outOfMemory: 1, timeouts: 0, replaced: 1 });
    expect(replaced).toEqual(['item ran its thread out of memory (limit 32 MiB)']);
    expect(pool.threads).toBe(2);
    expect((await pool.score(spec, [{ completion: '<answer>1</answer>', reference: '1' }]))[0].total).toBe(2);
  });
});

describe('boundedSpec', () => {
  const registry = createRegistry();
  registry.register({ name: 'custom', description: '', options: {}, score: () => 1 });

  it('accepts built-in components with numbers and enumerated options, and the default spec', () => {
    expect(boundedSpec(undefined, registry)).toBe(true);
    expect(boundedSpec({ components: [] }, registry)).toBe(true);
    expect(boundedSpec({ components: [{ name: 'format', weight: 1, options: { partialCredit: 0.5 } }, { name: 'repetition', weight: 1, options: { scope: 'answer' } }] }, registry)).toBe(true);
  });

  it('refuses plugins, free-text options (patterns, tags) and unknown names', () => {
    expect(boundedSpec({ components: [{ name: 'custom', weight: 1 }] }, registry)).toBe(false);
    expect(boundedSpec({ components: [{ name: 'format', weight: 1, options: { regex: 'a+' } }] }, registry)).toBe(false);
    expect(boundedSpec({ components: [{ name: 'accuracy', weight: 1, options: { answerTag: 'final' } }] }, registry)).toBe(false);
    expect(boundedSpec({ components: [{ name: 'nope', weight: 1 }] }, registry)).toBe(false);
  });
});
