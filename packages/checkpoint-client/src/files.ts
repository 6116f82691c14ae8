// Local checkpoint directories: the files in one (relative paths with "/"), and their
// sha256, read in chunks so a multi-gigabyte shard never sits in memory whole.
import { CheckpointFile, ModelSummary } from '@temper/proto';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileDigest, HashWorker } from './hash-worker';

/** Folders a pull writes into before its files are verified; never part of a checkpoint. */
export const PULL_TEMP_PREFIX = '.temper-pull-';

/** Every regular file under `dir` (symlinks followed), as sorted relative paths. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const entry of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      if (entry.name.startsWith(PULL_TEMP_PREFIX)) continue;
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const st = await fsp.stat(path.join(dir, relPath));
      if (st.isDirectory()) await walk(relPath);
      else if (st.isFile()) out.push(relPath);
    }
  };
  await walk('');
  return out.sort();
}

export async function hashFile(file: string, chunkBytes = 4 << 20): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  const handle = await fsp.open(file, 'r');
  try {
    // Two buffers, reused: one is hashed while the next read fills the other.
    const bufs = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
    let pending = handle.read(bufs[0], 0, chunkBytes, 0);
    for (let i = 0; ; i++) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const buf = bufs[i % 2];
      size += bytesRead;
      pending = handle.read(bufs[(i + 1) % 2], 0, chunkBytes, size);
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/** Below this many bytes in all, files are hashed on the main thread alone (a thread costs ~30 ms to start). */
const PARALLEL_HASH_MIN_BYTES = 64 << 20;

/** The files of a checkpoint directory with their sizes and hashes (those in `known` are not hashed again). */
export async function describeDir(dir: string, known: Record<string, string> = {}): Promise<CheckpointFile[]> {
  const rels = await listFiles(dir);
  const abs = (rel: string) => path.join(dir, ...rel.split('/'));
  const toHash = rels.filter((rel) => !known[rel]);
  const digests = new Map((await hashFiles(toHash.map(abs))).map((d, i) => [toHash[i], d]));
  return Promise.all(rels.map(async (rel) => ({ path: rel, ...(digests.get(rel) ?? { sha256: known[rel], size: (await fsp.stat(abs(rel))).size }) })));
}

/**
 * Hashes of the given files, in their order. With two or more cores and enough bytes, the
 * main thread and a worker thread take files from one queue, largest first.
 */
export async function hashFiles(files: string[], opts: { chunkBytes?: number; parallelMinBytes?: number } = {}): Promise<FileDigest[]> {
  const chunkBytes = opts.chunkBytes ?? 4 << 20;
  const sizes = await Promise.all(files.map(async (f) => (await fsp.stat(f)).size));
  const digests: FileDigest[] = new Array(files.length);
  const queue = files.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a]);
  const total = sizes.reduce((a, b) => a + b, 0);
  const parallel = files.length > 1 && total >= (opts.parallelMinBytes ?? PARALLEL_HASH_MIN_BYTES) && os.availableParallelism() > 1;
  const worker = parallel ? new HashWorker() : undefined;
  const drain = async (hash: (file: string) => Promise<FileDigest>) => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      try {
        digests[i] = await hash(files[i]);
      } catch (err) {
        queue.length = 0; // the other thread stops too
        throw new Error(`cannot hash ${files[i]}: ${(err as Error).message}`);
      }
    }
  };
  try {
    const work = [drain((f) => hashFile(f, chunkBytes))];
    if (worker) work.push(drain((f) => worker.hash(f, chunkBytes)));
    const settled = await Promise.allSettled(work);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
  } finally {
    await worker?.close();
  }
  return digests;
}

/**
 * What a Hugging Face model directory holds, from config.json and the safetensors headers
 * (the parameter count is the sum of the tensors' element counts; adapter files count too).
 * Undefined when there is no config.json.
 */
export async function summarizeModelDir(dir: string, files: string[]): Promise<ModelSummary | undefined> {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const num = (...keys: string[]) => {
    for (const k of keys) if (typeof config[k] === 'number') return config[k] as number;
    return 0;
  };
  let parameters = 0;
  const dtypes = new Set<string>();
  for (const rel of files.filter((f) => f.endsWith('.safetensors'))) {
    const header = await safetensorsHeader(path.join(dir, ...rel.split('/'))).catch(() => undefined);
    for (const [name, t] of Object.entries(header ?? {})) {
      if (name === '__metadata__') continue;
      const tensor = t as { dtype?: string; shape?: number[] };
      parameters += (tensor.shape ?? []).reduce((a, b) => a * b, 1);
      if (tensor.dtype) dtypes.add(tensor.dtype);
    }
  }
  const adapterConfig = files.find((f) => f.endsWith('adapter_config.json'));
  let adapter = '';
  if (adapterConfig) {
    const a = JSON.parse(await fsp.readFile(path.join(dir, ...adapterConfig.split('/')), 'utf8').catch(() => '{}'));
    adapter = a.use_dora ? 'dora' : a.use_rslora ? 'rslora' : String(a.peft_type ?? 'lora').toLowerCase();
  }
  return {
    modelType: typeof config.model_type === 'string' ? config.model_type : '',
    parameters,
    vocabSize: num('vocab_size'),
    hiddenSize: num('hidden_size', 'n_embd'),
    numLayers: num('num_hidden_layers', 'n_layer'),
    dtype: dtypes.size === 1 ? [...dtypes][0] : typeof config.torch_dtype === 'string' ? config.torch_dtype : [...dtypes].sort().join(','),
    adapter,
  };
}

/** The JSON header of a safetensors file (8-byte little-endian length, then JSON). */
async function safetensorsHeader(file: string): Promise<Record<string, unknown>> {
  const fh = await fsp.open(file, 'r');
  try {
    const len = Buffer.alloc(8);
    await fh.read(len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (n <= 0 || n > 100 << 20) throw new Error(`${file}: implausible safetensors header length ${n}`);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, 8);
    return JSON.parse(buf.toString('utf8'));
  } finally {
    await fh.close();
  }
}
