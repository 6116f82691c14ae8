// Test helpers: the shared fixtures' location and a small safetensors reader written apart from
// the engine's, so the golden values are not read by the code under test.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { HfConfig } from '@temper/native';

const repoRoot = path.resolve(__dirname, '..', '..');
export const fixturesDir = path.resolve(repoRoot, '..', 'shared', 'fixtures');

/** A safetensors header entry. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export type Golden = Map<string, { dtype: string; shape: number[]; data: Float64Array }>;

export function readGolden(file: string): { tensors: Golden; metadata: Record<string, string> } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, SafetensorsEntry>;
  const base = 8 + n;
  const tensors: Golden = new Map();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, end] = e.data_offsets;
    const bytes = buf.subarray(base + b, base + end);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let data: Float64Array;
    switch (e.dtype) {
      case 'F32': data = Float64Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true)); break;
      case 'F64': data = Float64Array.from({ length: bytes.length / 8 }, (_, i) => view.getFloat64(8 * i, true)); break;
      case 'I32': data = Float64Array.from({ length: bytes.length / 4 }, (_, i) => view.getInt32(4 * i, true)); break;
      default: throw new Error(`golden dtype ${e.dtype} not handled`);
    }
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata: (header.__metadata__ as unknown as Record<string, string>) ?? {} };
}

/** ‖a − b‖ / ‖b‖ */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** The fixtures, as paths relative to fixturesDir: those at the top and those in next/ (new architectures, same tolerances). */
export function fixtureNames(): string[] {
  if (!fs.existsSync(fixturesDir)) {
    throw new Error(`the engine fixtures are missing: expected them in ${fixturesDir} (../shared/fixtures beside the repository)`);
  }
  const inside = (sub: string) =>
    fs.existsSync(path.join(fixturesDir, sub))
      ? fs
          .readdirSync(path.join(fixturesDir, sub))
          .map((d) => path.posix.join(sub, d))
          .filter((d) => fs.existsSync(path.join(fixturesDir, d, 'golden.safetensors')))
      : [];
  return [...inside('.').map((d) => path.posix.normalize(d)), ...inside('next')].sort();
}

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** Builds a safetensors file from raw tensors (no checks: tests use it to make bad files too). */
export function writeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8) json += ' ';
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(Buffer.from(json, 'latin1'), 8);
  let p = 8 + json.length;
  for (const t of Object.values(tensors)) {
    out.set(t.bytes, p);
    p += t.bytes.length;
  }
  return out;
}

export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** IEEE half precision, round to nearest even (normal range is all the tests need). */
export function toF16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp <= 0) return sign;
  let h = sign | (exp << 10) | (mant >>> 13);
  mant &= 0x1fff;
  if (mant > 0x1000 || (mant === 0x1000 && (h & 1))) h++;
  return h;
}

export function fromF16(h: number): number {
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  const v = exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15);
  return h & 0x8000 ? -v : v;
}

/** A small random config of the family, for tests that need shapes the fixtures do not have. */
export function tinyConfig(over: Record<string, unknown> = {}): HfConfig {
  return {
    model_type: 'llama',
    vocab_size: 50,
    hidden_size: 48,
    intermediate_size: 80,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 10,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
    ...over,
  };
}
