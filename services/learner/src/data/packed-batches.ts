// Mid-training batches: documents drawn from a weighted mixture (by tokens, so each source's
// share of the trained tokens tracks its weight), tokenised, packed into fixed-length
// sequences with EOS after every document, and grouped into batches of rows.
//
// The engine attends causally over a whole row, so a row holding several documents lets a
// document see the ones before it (as in GPT-style packing); what the packer guarantees is
// that no prediction crosses into a document from the row before: a segment's first token
// (a continuation's, or a document's own first token) is never a target.
import { emptyMixtureStats, MixtureStats, mixDocuments, mixtureFromSources, packDocuments, PackingPolicy, type DataSourceSpec, type Document } from '@temper/data';
import type { DataSource } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';

export interface PackedBatch {
  /** batch × seqLen token ids, row-major. */
  tokens: Int32Array;
  lossMask: Uint8Array;
  /** Real (unpadded) length of each row. */
  lengths: Int32Array;
  batch: number;
  seqLen: number;
  /** Target tokens in the batch. */
  targets: number;
}

export interface PackedBatchOptions {
  seqLen: number;
  batchSize: number;
  seed: number | string;
  policy?: PackingPolicy;
  /** Relative file paths in the mixture are taken from here. */
  baseDir?: string;
}

export interface PackedStream {
  /** Tokens each source has given so far (documents with their EOS), by source name. */
  readonly stats: MixtureStats;
  next(): PackedBatch;
}

/** The run spec's sources as @temper/data reads them. */
export function sourceSpecs(sources: readonly DataSource[]): DataSourceSpec[] {
  return sources.map((s, i) => ({ name: s.name || `source-${i}`, uri: s.uri, weight: s.weight, fields: { ...s.fields } }));
}

/** An endless stream of packed batches from a mixture. */
export function packedBatches(sources: readonly DataSource[], tokenizer: Tokenizer, options: PackedBatchOptions): PackedStream {
  const { seqLen, batchSize } = options;
  if (sources.length === 0) throw new Error('mid-training needs a mixture with at least one source');
  if (tokenizer.specialTokens.eos === undefined) throw new Error('mid-training needs a tokenizer with an EOS token');
  const components = mixtureFromSources(sourceSpecs(sources), { seed: options.seed, baseDir: options.baseDir });
  const stats = emptyMixtureStats();
  // Each document is tokenised once: measure() (the mixture's size of it, with its EOS)
  // keeps the ids for the packer.
  const ids = new WeakMap<Document, Int32Array>();
  const measure = (doc: Document) => {
    const t = tokenizer.encode(doc.text);
    ids.set(doc, t);
    return t.length + 1;
  };
  const documents = mixDocuments(components, { seed: options.seed, unit: 'tokens', measure, stats });
  const tokenised = (function* () {
    for (const doc of documents) {
      const t = ids.get(doc) ?? tokenizer.encode(doc.text);
      ids.delete(doc);
      yield t;
    }
  })();
  const pad = tokenizer.specialTokens.pad ?? tokenizer.specialTokens.eos;
  const sequences = packDocuments(tokenised, { seqLen, eosId: tokenizer.specialTokens.eos, padId: pad, policy: options.policy ?? 'split' });
  return {
    stats,
    next(): PackedBatch {
      const tokens = new Int32Array(batchSize * seqLen);
      const lossMask = new Uint8Array(batchSize * seqLen);
      const lengths = new Int32Array(batchSize);
      let targets = 0;
      for (let b = 0; b < batchSize; b++) {
        const r = sequences.next();
        if (r.done) throw new Error('the mixture ran out of documents');
        const seq = r.value;
        tokens.set(seq.tokens, b * seqLen);
        lossMask.set(seq.lossMask, b * seqLen);
        lengths[b] = Math.max(2, seq.filled);
        for (const m of seq.lossMask) targets += m;
      }
      return { tokens, lossMask, lengths, batch: batchSize, seqLen, targets };
    },
  };
}

/** Each source's share of the tokens drawn so far. */
export function tokenShares(stats: MixtureStats): Record<string, number> {
  const total = Object.values(stats.units).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(stats.units).map(([k, v]) => [k, total ? v / total : 0]));
}
