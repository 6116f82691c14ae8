// Shared test setup: small model directories, a store served over loopback gRPC, and
// byte-for-byte directory comparison.
import { Bus, connectBus } from '@temper/bus';
import { startGrpcServer, RunningGrpcServer } from '@temper/service';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointClient, listFiles } from '@temper/checkpoint-client';
import { Backend, CheckpointStore, checkpointStoreBinding, FsBackend, widenFlowControl, ObjectStoreBackend, RetentionPolicy } from '../src';
import { publishCommitted } from '../src/events';
import { testNatsUrl } from '../../../test/harness/nats';

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

export interface TestStore {
  store: CheckpointStore;
  backend: Backend;
  server: RunningGrpcServer;
  client: CheckpointClient;
  root: string;
  bus?: Bus;
  /** Stops the server and the store and removes its folder (unless `keepFiles`, to reopen it). */
  stop(keepFiles?: boolean): Promise<void>;
}

export interface TestStoreOptions {
  backend?: 'fs' | 'nats';
  retention?: RetentionPolicy;
  /** Publish CheckpointCommitted on the harness's JetStream. */
  events?: boolean;
  /** Reuse this folder (to reopen a store). */
  root?: string;
  bucketPrefix?: string;
}

export async function startTestStore(opts: TestStoreOptions = {}): Promise<TestStore> {
  const root = opts.root ?? (await tempDir());
  const bus = opts.backend === 'nats' || opts.events ? await connectBus(testNatsUrl(), 'checkpoint-store-test') : undefined;
  const backend =
    opts.backend === 'nats'
      ? await ObjectStoreBackend.open(bus!.nc, { bucketPrefix: opts.bucketPrefix ?? uniqueBucket() })
      : await FsBackend.open(path.join(root, 'store'));
  const store = await CheckpointStore.open({
    backend,
    stagingDir: path.join(root, opts.backend === 'nats' ? 'staging' : 'store/uploads'),
    retention: opts.retention,
    onCommitted: opts.events ? publishCommitted(bus!) : undefined,
  });
  const server = await startGrpcServer({ address: '127.0.0.1:0', services: [checkpointStoreBinding(store)] });
  widenFlowControl(server.server);
  const client = new CheckpointClient(server.address);
  return {
    store,
    backend,
    server,
    client,
    root,
    bus,
    stop: async (keepFiles = false) => {
      client.close();
      await server.stop(1000);
      await store.close();
      await bus?.close();
      if (!keepFiles) await fsp.rm(root, { recursive: true, force: true });
    },
  };
}

export function uniqueBucket(): string {
  return `test-ckpt-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export function fileExists(p: string): boolean {
  return fs.existsSync(p);
}
