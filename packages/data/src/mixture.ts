// Weighted mixtures of corpora for mid-training. Two ways to read a weight:
// - 'documents': each next document comes from source i with probability w_i / sum(w),
//   drawn with a seeded RNG (proportions hold in expectation; see the tests' tolerance);
// - 'tokens': the next document comes from the source furthest behind its share of the
//   measured size so far (deficit scheduling), so shares of tokens track the weights to
//   within one document's length; ties are broken by the seeded RNG.
// Finite sources (users' files) are re-opened when they run out: a new epoch.
import type { Document, DocumentSource } from './corpora/types';
import { createRng } from './rng';

export interface MixtureComponent {
  source: DocumentSource;
  weight: number;
}

/** Running counts of what a mixture gave, per source name; fill one in to observe a run. */
export interface MixtureStats {
  documents: Record<string, number>;
  /** Sum of measure(doc): tokens in 'tokens' mode, characters by default. */
  units: Record<string, number>;
  /** How many times each source was opened (1 for a source never exhausted). */
  epochs: Record<string, number>;
}

export interface MixtureOptions {
  seed: number | string;
  unit?: 'documents' | 'tokens';
  /** Size of a document, e.g. its token count; defaults to its length in characters. */
  measure?: (doc: Document) => number;
  stats?: MixtureStats;
}

export function emptyMixtureStats(): MixtureStats {
  return { documents: {}, units: {}, epochs: {} };
}

/** Each component's target share (weights normalised to sum to 1), by source name. */
export function mixtureShares(components: readonly MixtureComponent[]): Record<string, number> {
  validate(components);
  const total = components.reduce((s, c) => s + c.weight, 0);
  return Object.fromEntries(components.map((c) => [c.source.name, c.weight / total]));
}

function validate(components: readonly MixtureComponent[]): void {
  if (components.length === 0) throw new Error('a mixture needs at least one source');
  const names = new Set<string>();
  for (const c of components) {
    if (names.has(c.source.name)) throw new Error(`mixture source "${c.source.name}" is listed twice`);
    names.add(c.source.name);
    if (!Number.isFinite(c.weight) || c.weight < 0) throw new Error(`mixture source "${c.source.name}" has weight ${c.weight}; weights must be finite and >= 0`);
  }
  if (!components.some((c) => c.weight > 0)) throw new Error('every mixture weight is 0');
}

/** An endless stream of documents drawn from the components by weight. */
export function* mixDocuments(components: readonly MixtureComponent[], options: MixtureOptions): Generator<Document> {
  validate(components);
  const live = components.filter((c) => c.weight > 0);
  const rng = createRng('mixture', options.seed);
  const measure = options.measure ?? ((d: Document) => d.text.length);
  const stats = options.stats ?? emptyMixtureStats();
  const iterators = live.map((c) => {
    stats.epochs[c.source.name] = (stats.epochs[c.source.name] ?? 0) + 1;
    return c.source.open();
  });
  const consumed = live.map(() => 0);
  const total = live.reduce((s, c) => s + c.weight, 0);
  const cumulative = live.map((_, i) => live.slice(0, i + 1).reduce((s, c) => s + c.weight, 0) / total);

  const pickByDocuments = (): number => {
    const u = rng.next();
    const i = cumulative.findIndex((c) => u < c);
    return i < 0 ? live.length - 1 : i;
  };
  const pickByTokens = (): number => {
    let best: number[] = [];
    let bestRatio = Infinity;
    for (let i = 0; i < live.length; i++) {
      const ratio = consumed[i] / live[i].weight;
      if (ratio < bestRatio - 1e-12) {
        bestRatio = ratio;
        best = [i];
      } else if (Math.abs(ratio - bestRatio) <= 1e-12) best.push(i);
    }
    return best.length === 1 ? best[0] : rng.pick(best);
  };

  for (;;) {
    const i = options.unit === 'tokens' ? pickByTokens() : pickByDocuments();
    const name = live[i].source.name;
    let r = iterators[i].next();
    if (r.done) {
      iterators[i] = live[i].source.open();
      stats.epochs[name] += 1;
      r = iterators[i].next();
      if (r.done) throw new Error(`mixture source "${name}" has no documents`);
    }
    const size = measure(r.value);
    if (!(size >= 0)) throw new Error(`measure gave ${size} for a document of "${name}"`);
    consumed[i] += size;
    stats.documents[name] = (stats.documents[name] ?? 0) + 1;
    stats.units[name] = (stats.units[name] ?? 0) + size;
    yield r.value;
  }
}

/** A source over a fixed list of documents (e.g. a loaded file). */
export function arraySource(name: string, docs: readonly Document[]): DocumentSource {
  return { name, open: () => docs[Symbol.iterator]() };
}

/** A source over a generator function (e.g. a synthetic corpus with its seed). */
export function generatorSource(name: string, open: () => Iterator<Document>): DocumentSource {
  return { name, open };
}
