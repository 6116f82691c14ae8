import { arraySource, emptyMixtureStats, generatorSource, instructionDocuments, mixDocuments, mixtureShares, webMathDocuments, type Document, type DocumentSource } from '@temper/data';

const take = <T>(it: Iterator<T>, n: number): T[] => Array.from({ length: n }, () => it.next().value as T);

// An endless source whose documents say where they came from and have a fixed length.
function fixed(name: string, length: number): DocumentSource {
  return generatorSource(name, function* () {
    for (;;) yield { text: 'x'.repeat(length), source: name };
  });
}

describe('mixDocuments by documents', () => {
  const components = [
    { source: fixed('a', 10), weight: 5 },
    { source: fixed('b', 10), weight: 3 },
    { source: fixed('c', 10), weight: 2 },
  ];

  it('draws each source in proportion to its weight, within four standard deviations', () => {
    const n = 20000;
    const stats = emptyMixtureStats();
    const docs = take(mixDocuments(components, { seed: 1, stats }), n);
    const shares = mixtureShares(components);
    expect(shares).toEqual({ a: 0.5, b: 0.3, c: 0.2 });
    for (const [name, p] of Object.entries(shares)) {
      const count = docs.filter((d) => d.source === name).length;
      expect(stats.documents[name]).toBe(count);
      // Binomial(n, p): the count is within 4 sd of n*p except with probability ~6e-5.
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(count - n * p)).toBeLessThan(4 * sd);
    }
  });

  it('is deterministic by seed', () => {
    const order = (seed: number) => take(mixDocuments(components, { seed }), 200).map((d) => d.source).join('');
    expect(order(7)).toBe(order(7));
    expect(order(8)).not.toBe(order(7));
  });

  it('never draws a source of weight 0', () => {
    const docs = take(mixDocuments([...components, { source: fixed('never', 1), weight: 0 }], { seed: 2 }), 5000);
    expect(docs.some((d) => d.source === 'never')).toBe(false);
  });

  it('mixes the synthetic corpora', () => {
    const docs = take(
      mixDocuments(
        [
          { source: generatorSource('web-math', () => webMathDocuments(1)), weight: 1 },
          { source: generatorSource('instructions', () => instructionDocuments({ seed: 1 })), weight: 1 },
        ],
        { seed: 1 },
      ),
      400,
    );
    const web = docs.filter((d) => d.source === 'web-math').length;
    // Binomial(400, 0.5): sd = 10.
    expect(Math.abs(web - 200)).toBeLessThan(40);
  });
});

describe('mixDocuments by tokens', () => {
  it('matches the weights in measured size, within one document', () => {
    const stats = emptyMixtureStats();
    const measure = (d: Document) => d.text.length;
    const components = [
      { source: fixed('short', 10), weight: 1 },
      { source: fixed('long', 300), weight: 3 },
    ];
    take(mixDocuments(components, { seed: 1, unit: 'tokens', measure, stats }), 3000);
    const total = stats.units.short + stats.units.long;
    expect(Math.abs(stats.units.long - 0.75 * total)).toBeLessThanOrEqual(300);
    // By documents the short source dominates: 9 short documents per long one.
    expect(stats.documents.short / stats.documents.long).toBeGreaterThan(8);
  });
});

describe('mixture sources', () => {
  it('reopen a finite source when it runs out, counting epochs', () => {
    const stats = emptyMixtureStats();
    const docs = take(mixDocuments([{ source: arraySource('file', [{ text: 'one', source: 'file' }, { text: 'two', source: 'file' }]), weight: 1 }], { seed: 1, stats }), 5);
    expect(docs.map((d) => d.text)).toEqual(['one', 'two', 'one', 'two', 'one']);
    expect(stats.epochs.file).toBe(3);
  });

  it('name the source that has no documents and refuse bad weights', () => {
    expect(() => take(mixDocuments([{ source: arraySource('empty.jsonl', []), weight: 1 }], { seed: 1 }), 1)).toThrow(/"empty.jsonl" has no documents/);
    expect(() => mixtureShares([])).toThrow(/at least one source/);
    expect(() => mixtureShares([{ source: fixed('a', 1), weight: -1 }])).toThrow(/"a" has weight -1/);
    expect(() => mixtureShares([{ source: fixed('a', 1), weight: NaN }])).toThrow(/weights must be finite/);
    expect(() => mixtureShares([{ source: fixed('a', 1), weight: 0 }])).toThrow(/every mixture weight is 0/);
    expect(() => mixtureShares([{ source: fixed('a', 1), weight: 1 }, { source: fixed('a', 1), weight: 1 }])).toThrow(/listed twice/);
  });
});
