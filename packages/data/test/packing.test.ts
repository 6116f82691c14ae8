import { createRng, packDocuments, type PackedSequence, type PackingPolicy } from '@temper/data';

const EOS = 1;
const PAD = 0;
const BOS = 2;

// Documents of random lengths (including empty and longer than a sequence) with tokens
// >= 10, so they can never be confused with the special ids.
function randomDocs(seed: number, count: number, maxLen: number): Int32Array[] {
  const rng = createRng('pack-test', seed);
  return Array.from({ length: count }, () => Int32Array.from({ length: rng.int(0, maxLen) }, () => rng.int(10, 99)));
}

function framed(doc: Int32Array, bos: boolean): number[] {
  return [...(bos ? [BOS] : []), ...doc, EOS];
}

function checkCommonInvariants(seqs: PackedSequence[], seqLen: number): void {
  for (const s of seqs) {
    for (const arr of [s.tokens, s.lossMask, s.positions, s.segmentIds]) expect(arr.length).toBe(seqLen);
    expect(s.segments.reduce((n, g) => n + g.length, 0)).toBe(s.filled);
    let offset = 0;
    s.segments.forEach((g, i) => {
      expect(g.start).toBe(offset);
      offset += g.length;
      for (let k = 0; k < g.length; k++) {
        expect(s.segmentIds[g.start + k]).toBe(i);
        expect(s.positions[g.start + k]).toBe(k);
        // A segment's first token has no context in its segment: never a target.
        expect(s.lossMask[g.start + k]).toBe(k === 0 ? 0 : 1);
      }
    });
    for (let t = s.filled; t < seqLen; t++) {
      expect(s.tokens[t]).toBe(PAD);
      expect(s.lossMask[t]).toBe(0);
      expect(s.segmentIds[t]).toBe(-1);
      expect(s.positions[t]).toBe(0);
    }
  }
}

describe('packDocuments, split policy', () => {
  for (const bos of [false, true]) {
    it(`loses and reorders nothing, splitting long documents into segments (bos: ${bos})`, () => {
      const seqLen = 32;
      const docs = randomDocs(1, 200, 80);
      const seqs = [...packDocuments(docs, { seqLen, eosId: EOS, padId: PAD, bosId: bos ? BOS : undefined })];
      checkCommonInvariants(seqs, seqLen);
      const stream = docs.flatMap((d) => framed(d, bos));
      expect(seqs.length).toBe(Math.ceil(stream.length / seqLen));
      // Every sequence but the last is full.
      for (const s of seqs.slice(0, -1)) expect(s.filled).toBe(seqLen);
      const concatenated = seqs.flatMap((s) => Array.from(s.tokens.subarray(0, s.filled)));
      expect(concatenated).toEqual(stream);
      // Segments map back to their documents: a document's pieces, in order, rebuild it.
      const pieces = new Map<number, number[]>();
      for (const s of seqs) for (const g of s.segments) pieces.set(g.document, [...(pieces.get(g.document) ?? []), ...s.tokens.subarray(g.start, g.start + g.length)]);
      docs.forEach((d, i) => expect(pieces.get(i)).toEqual(framed(d, bos)));
      // Only a segment that starts a sequence can be a continuation.
      for (const s of seqs) s.segments.forEach((g, i) => i > 0 && expect(g.continuation).toBe(false));
      expect(seqs.some((s) => s.segments[0].continuation)).toBe(true);
    });
  }

  it('puts EOS between documents', () => {
    const seqs = [...packDocuments([Int32Array.of(10, 11), Int32Array.of(12), Int32Array.of(13, 14)], { seqLen: 16, eosId: EOS, padId: PAD })];
    expect(seqs).toHaveLength(1);
    expect(Array.from(seqs[0].tokens.subarray(0, seqs[0].filled))).toEqual([10, 11, EOS, 12, EOS, 13, 14, EOS]);
    expect(Array.from(seqs[0].lossMask.subarray(0, 8))).toEqual([0, 1, 1, 0, 1, 0, 1, 1]);
    expect(Array.from(seqs[0].positions.subarray(0, 8))).toEqual([0, 1, 2, 0, 1, 0, 1, 2]);
  });
});

describe('packDocuments, truncate policy', () => {
  it('never lets a document straddle two sequences', () => {
    const seqLen = 24;
    const docs = randomDocs(2, 300, 40);
    const seqs = [...packDocuments(docs, { seqLen, eosId: EOS, padId: PAD, bosId: BOS, policy: 'truncate' })];
    checkCommonInvariants(seqs, seqLen);
    const seenIn = new Map<number, number>();
    seqs.forEach((s, si) =>
      s.segments.forEach((g) => {
        expect(seenIn.has(g.document)).toBe(false);
        seenIn.set(g.document, si);
        expect(g.continuation).toBe(false);
        const whole = framed(docs[g.document], true);
        // Whole when it fits in a sequence, else its first seqLen tokens (no EOS).
        expect(Array.from(s.tokens.subarray(g.start, g.start + g.length))).toEqual(whole.slice(0, seqLen));
      }),
    );
    expect(seenIn.size).toBe(docs.length);
    // A sequence closes only when the next document does not fit in what is left.
    for (let i = 0; i + 1 < seqs.length; i++) {
      const next = seqs[i + 1].segments[0];
      expect(framed(docs[next.document], true).length).toBeGreaterThan(seqLen - seqs[i].filled);
    }
  });
});

describe('packDocuments options', () => {
  it('drops the last partial sequence when asked, and refuses bad settings', () => {
    const docs = [Int32Array.of(10, 11, 12), Int32Array.of(13)];
    for (const policy of ['split', 'truncate'] as PackingPolicy[]) {
      expect([...packDocuments(docs, { seqLen: 4, eosId: EOS, padId: PAD, policy })]).toHaveLength(2);
      expect([...packDocuments(docs, { seqLen: 4, eosId: EOS, padId: PAD, policy, keepLast: false })]).toHaveLength(1);
    }
    expect(() => [...packDocuments(docs, { seqLen: 1, eosId: EOS, padId: PAD })]).toThrow(/seqLen/);
    expect(() => [...packDocuments(docs, { seqLen: 8, eosId: EOS, padId: PAD, policy: 'wrap' as PackingPolicy })]).toThrow(/unknown packing policy/);
    expect([...packDocuments([], { seqLen: 8, eosId: EOS, padId: PAD })]).toHaveLength(0);
  });
});
