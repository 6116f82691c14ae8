// Test helpers: the shared fixtures' location and a small safetensors reader written apart from
// the engine's, so the golden values are not read by the code under test.
import * as fs from 'node:fs';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '..', '..');
export const fixturesDir = path.resolve(repoRoot, '..', 'shared', 'fixtures');

export type Golden = Map<string, { dtype: string; shape: number[]; data: Float64Array }>;

export function readGolden(file: string): { tensors: Golden; metadata: Record<string, string> } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const base = 8 + n;
  const tensors: Golden = new Map();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, end] = e.data_offsets as [number, number];
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
  return { tensors, metadata: header.__metadata__ ?? {} };
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

export function fixtureNames(): string[] {
  return fs
    .readdirSync(fixturesDir)
    .filter((d) => fs.existsSync(path.join(fixturesDir, d, 'golden.safetensors')))
    .sort();
}
