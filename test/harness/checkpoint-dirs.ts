// Checkpoint directories for tests: Hugging Face-shaped model folders to push, and comparing
// two folders byte for byte (the store's tests and `temper ckpt`'s).
import { listFiles } from '@temper/checkpoint-client';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export async function tempDir(prefix = 'ckpt-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A Hugging Face-shaped directory: config, N safetensors shards, tokenizer, an adapter folder. */
export async function makeModelDir(dir: string, opts: { shards?: number; shardBytes?: number } = {}): Promise<string> {
  const shards = opts.shards ?? 3;
  const shardBytes = opts.shardBytes ?? 1 << 20;
  await fsp.mkdir(path.join(dir, 'adapter'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, vocab_size: 256 }));
  await fsp.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE' } }));
  for (let i = 1; i <= shards; i++) {
    const name = `model-${String(i).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    // Odd sizes so the last chunk of each file is a partial one.
    await fsp.writeFile(path.join(dir, name), randomBytes(shardBytes + i * 7919));
  }
  await fsp.writeFile(path.join(dir, 'adapter', 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8 }));
  await fsp.writeFile(path.join(dir, 'adapter', 'empty.bin'), '');
  return dir;
}

/** Throws unless both directories hold the same relative paths with identical bytes. */
export async function expectSameTree(a: string, b: string): Promise<void> {
  const fa = await listFiles(a);
  const fb = await listFiles(b);
  expect(fb).toEqual(fa);
  for (const rel of fa) {
    const [x, y] = await Promise.all([fsp.readFile(path.join(a, rel)), fsp.readFile(path.join(b, rel))]);
    if (!x.equals(y)) throw new Error(`${rel} differs between ${a} and ${b}`);
  }
}
