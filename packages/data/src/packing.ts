// Packing tokenised documents into fixed-length training sequences.
//
// Every document is followed by EOS (and preceded by BOS when one is given), and
// sequences are filled greedily in document order. What happens at a sequence's end is the
// policy:
// - 'split' (default): a document that does not fit is cut; its remainder starts the next
//   sequence as a new segment. No token is lost and no padding is spent except at the very
//   end of the stream. Each segment is meant to be attended on its own (attention reset):
//   positions restart at 0 in every segment, and a continuation's first token is not a
//   target because its context was in the previous sequence.
// - 'truncate': a document never straddles two sequences. If it does not fit in what is
//   left, the rest is padded and it starts the next sequence; a document longer than a whole
//   sequence is cut to the sequence length and the remainder dropped (its EOS is lost, so the
//   model is never taught to end a document where it did not end).
//
// For every sequence the packer reports, per token: the segment it belongs to, its position
// within that segment, and whether it is a training target (lossMask). Targets follow the
// engine's convention that logprobs(tokens)[t] is log p(token t | tokens before t): a
// segment's first token and padding are never targets.

export type PackingPolicy = 'split' | 'truncate';

export interface PackingOptions {
  seqLen: number;
  eosId: number;
  padId: number;
  /** Prepended to every document (not to a continuation of one), when given. */
  bosId?: number;
  policy?: PackingPolicy;
  /** Emit the last, partly filled sequence (padded). Default true. */
  keepLast?: boolean;
}

export interface Segment {
  /** Offset of the segment's first token in the sequence. */
  start: number;
  length: number;
  /** Index of the document in the input stream. */
  document: number;
  /** The segment continues a document begun in an earlier sequence ('split' only). */
  continuation: boolean;
}

export interface PackedSequence {
  tokens: Int32Array;
  /** 1 where the token is a training target, else 0. */
  lossMask: Uint8Array;
  /** Position of each token within its segment (0 at each segment start; 0 for padding). */
  positions: Int32Array;
  /** Index into `segments` of each token's segment; -1 for padding. */
  segmentIds: Int32Array;
  segments: Segment[];
  /** Tokens before the padding. */
  filled: number;
}

class SequenceBuilder {
  readonly tokens: Int32Array;
  readonly lossMask: Uint8Array;
  readonly positions: Int32Array;
  readonly segmentIds: Int32Array;
  readonly segments: Segment[] = [];
  filled = 0;

  constructor(readonly seqLen: number) {
    this.tokens = new Int32Array(seqLen);
    this.lossMask = new Uint8Array(seqLen);
    this.positions = new Int32Array(seqLen);
    this.segmentIds = new Int32Array(seqLen).fill(-1);
  }

  get room(): number {
    return this.seqLen - this.filled;
  }

  add(piece: ArrayLike<number>, document: number, continuation: boolean): void {
    const seg = this.segments.length;
    const start = this.filled;
    for (let k = 0; k < piece.length; k++) {
      this.tokens[start + k] = piece[k];
      this.positions[start + k] = k;
      this.segmentIds[start + k] = seg;
      this.lossMask[start + k] = k === 0 ? 0 : 1;
    }
    this.segments.push({ start, length: piece.length, document, continuation });
    this.filled += piece.length;
  }

  finish(padId: number): PackedSequence {
    this.tokens.fill(padId, this.filled);
    return { tokens: this.tokens, lossMask: this.lossMask, positions: this.positions, segmentIds: this.segmentIds, segments: this.segments, filled: this.filled };
  }
}

/** Pack a stream of tokenised documents (without BOS/EOS) into sequences. */
export function* packDocuments(documents: Iterable<ArrayLike<number>>, options: PackingOptions): Generator<PackedSequence> {
  const { seqLen, eosId, padId, bosId } = options;
  const policy = options.policy ?? 'split';
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new RangeError(`seqLen must be an integer >= 2, got ${seqLen}`);
  if (policy !== 'split' && policy !== 'truncate') throw new RangeError(`unknown packing policy ${JSON.stringify(policy)}`);
  let current = new SequenceBuilder(seqLen);
  let index = 0;
  for (const doc of documents) {
    const framed = new Int32Array(doc.length + 1 + (bosId === undefined ? 0 : 1));
    let o = 0;
    if (bosId !== undefined) framed[o++] = bosId;
    framed.set(doc, o);
    framed[framed.length - 1] = eosId;

    if (policy === 'truncate') {
      if (framed.length > current.room && current.filled > 0) {
        yield current.finish(padId);
        current = new SequenceBuilder(seqLen);
      }
      current.add(framed.subarray(0, Math.min(framed.length, seqLen)), index, false);
    } else {
      let offset = 0;
      while (offset < framed.length) {
        if (current.room === 0) {
          yield current.finish(padId);
          current = new SequenceBuilder(seqLen);
        }
        const take = Math.min(current.room, framed.length - offset);
        current.add(framed.subarray(offset, offset + take), index, offset > 0);
        offset += take;
      }
    }
    if (current.room === 0) {
      yield current.finish(padId);
      current = new SequenceBuilder(seqLen);
    }
    index++;
  }
  if (current.filled > 0 && (options.keepLast ?? true)) yield current.finish(padId);
}
