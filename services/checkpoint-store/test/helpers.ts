// Shared test setup: a store served over loopback gRPC (model directories to push, and
// comparing them, come from test/harness/checkpoint-dirs.ts).
import { Bus, connectBus } from '@temper/bus';
import { startGrpcServer, RunningGrpcServer } from '@temper/service';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CheckpointClient } from '@temper/checkpoint-client';
import { Backend, CheckpointStore, checkpointStoreBinding, FsBackend, widenFlowControl, ObjectStoreBackend, RetentionPolicy } from '../src';
import { publishCommitted } from '../src/events';
import { tempDir } from '../../../test/harness/checkpoint-dirs';
import { testNatsUrl } from '../../../test/harness/nats';

export { expectSameTree, makeModelDir, tempDir } from '../../../test/harness/checkpoint-dirs';

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
