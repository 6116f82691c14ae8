// Thousands of mutated safetensors files thrown at the loader: byte flips, lying header lengths,
// truncation, and structured edits of the JSON header (dtypes, shapes, offsets, escapes). Every
// one must either load or fail with an Error; the process must not crash, and the model must keep
// working afterwards. The PRNG is seeded, so a failure reproduces.
import { HfConfig, Model, readSafetensors } from '@temper/native';

const config: HfConfig = {
  model_type: 'qwen2',
  vocab_size: 8,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 4,
  tie_word_embeddings: true,
};

// Errors made by the addon come from Node's realm, not Jest's sandbox, so instanceof cannot be used.
function isError(e: unknown): boolean {
  return Object.prototype.toString.call(e) === '[object Error]' && typeof (e as Error).message === 'string';
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Header = Record<string, Record<string, unknown>>;

function split(bytes: Uint8Array): { json: Header; body: Uint8Array } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString()), body: bytes.subarray(8 + len) };
}

function join(header: string, body: Uint8Array): Uint8Array {
  const h = Buffer.from(header);
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}

const oddValues: unknown[] = [
  -1, 0, 1, 3.5, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, -0, 'F32', '', null, true, [], [1, [2]], {}, { a: 1 }, [0, 0], [8, 4], [-8, 8],
  [0, 1e20], [1, 2, 3],
];
const dtypes = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'f32', 'C64', ''];

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const { json, body } = split(src);
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  const hlen = src.length - body.length;
  switch (Math.floor(r() * 8)) {
    case 0: {  // flip bytes anywhere in the header, length included
      const b = src.slice();
      for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) b[Math.floor(r() * hlen)] = Math.floor(r() * 256);
      return b;
    }
    case 1: {  // lie about the header length
      const b = src.slice();
      const v = pick([0n, 1n, 7n, BigInt(hlen - 8 + Math.floor(r() * 33) - 16), BigInt(src.length), 2n ** 63n, 2n ** 64n - 1n]);
      new DataView(b.buffer).setBigUint64(0, v, true);
      return b;
    }
    case 2:  // truncate
      return src.slice(0, Math.floor(r() * src.length));
    case 3: {  // odd values in a tensor's fields
      const t = json[pick(names)];
      const field = pick(['dtype', 'shape', 'data_offsets']);
      t[field] = field === 'dtype' && r() < 0.7 ? pick(dtypes) : pick(oddValues);
      return join(JSON.stringify(json), body);
    }
    case 4: {  // drop or duplicate entries, or replace the metadata
      const k = pick(names);
      if (r() < 0.4) delete json[k];
      else if (r() < 0.5) json[`${k}.copy`] = json[k];
      else json.__metadata__ = pick(oddValues) as Record<string, unknown>;
      return join(JSON.stringify(json), body);
    }
    case 5: {  // splice text into the JSON: escapes, brackets, duplicate keys, deep nesting
      const text = JSON.stringify(json);
      const at = Math.floor(r() * text.length);
      const junk = pick(['\\u', '\\ud800', '"', '{', '}', ']', ',', ':', '"a":1,"a":2', '['.repeat(200), '\u0000', '1e999', '\\"']);
      return join(text.slice(0, at) + junk + text.slice(at), body);
    }
    case 6: {  // shift a tensor's offsets
      const t = json[pick(names)];
      const d = Math.floor(r() * 64) - 32;
      const [b, e] = t.data_offsets as number[];
      t.data_offsets = [b + d, e + (r() < 0.5 ? d : 0)];
      return join(JSON.stringify(json), body);
    }
    default: {  // corrupt the data: random bytes (NaN and infinity among them)
      const b = src.slice();
      for (let i = 0, n = 1 + Math.floor(r() * 16); i < n; i++) b[hlen + Math.floor(r() * body.length)] = Math.floor(r() * 256);
      return b;
    }
  }
}

describe('safetensors fuzz', () => {
  let model: Model;
  let good: Uint8Array;
  beforeAll(async () => {
    model = await Model.create(config, { seed: 1, threads: 1 });
    good = await model.exportWeights();
  });

  it('readSafetensors: 4000 mutated files load or throw an Error', () => {
    const r = rng(1234);
    let refused = 0;
    for (let i = 0; i < 4000; i++) {
      const bytes = mutate(good, r);
      try {
        readSafetensors(bytes);
      } catch (e) {
        expect(isError(e)).toBe(true);
        expect((e as Error).message.length).toBeGreaterThan(10);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });

  it('importWeights: 1500 mutated files load or reject, and the model keeps working', async () => {
    const r = rng(99);
    const tokens = Int32Array.from([1, 2, 3, 4]);
    const reference = await model.forward(tokens, { batch: 1, seqLen: 4 });
    let refused = 0;
    for (let i = 0; i < 1500; i++) {
      try {
        await model.importWeights(mutate(good, r));
      } catch (e) {
        expect(isError(e)).toBe(true);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(500);
    const logits = await model.forward(tokens, { batch: 1, seqLen: 4 });
    expect(logits.every(Number.isFinite)).toBe(true);
    await model.importWeights(good);
    expect(Array.from(await model.forward(tokens, { batch: 1, seqLen: 4 }))).toEqual(Array.from(reference));
  });
});
