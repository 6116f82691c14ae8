// Shared test setup: a store served over loopback gRPC (model directories to push, and
// comparing them, come from test/harness/checkpoint-dirs.ts).
import { Bus, connectBus } from '@temper/bus';
import { startGrpcServer, RunningGrpcServer } from '@temper/service';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CheckpointClient, ManifestFields, manifestForDir } from '@temper/checkpoint-client';
import { PutCheckpointRequest, PutHeader } from '@temper/proto';
import { Backend, CheckpointStore, checkpointStoreBinding, FsBackend, widenFlowControl, ObjectStoreBackend, RetentionPolicy, StagingQuota } from '../src';
import type { CheckpointStoreOptions } from '../src/store';
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
  quota?: StagingQuota;
  /** Called for each announcement instead of publishing it (`events` unset). */
  onCommitted?: CheckpointStoreOptions['onCommitted'];
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
    onCommitted: opts.events ? publishCommitted(bus!) : opts.onCommitted,
    quota: opts.quota,
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

/**
 * Sends the header and the first `bytes` bytes of the upload, then either ends the stream
 * without a commit ('end': the store keeps every byte sent) or drops the call ('cancel':
 * bytes still in flight are lost).
 */
export async function sendPartOfUpload(client: CheckpointClient, src: string, uploadId: string, bytes: number, how: 'end' | 'cancel', fields: ManifestFields = { runId: 'resume', branch: 'main', step: 7 }): Promise<PutHeader> {
  const manifest = await manifestForDir(src, fields);
  const files = manifest.files;
  const header = PutHeader.fromPartial({ uploadId, manifest });
  const call = client.raw.putCheckpoint(() => undefined);
  call.on('error', () => undefined);
  const send = (m: PutCheckpointRequest) => new Promise<void>((resolve) => call.write(m, () => resolve()));
  await send({ part: { $case: 'header', value: header } });
  let left = bytes;
  for (const f of files) {
    const data = await fsp.readFile(path.join(src, f.path));
    for (let off = 0; off < data.length && left > 0; off += 100_000) {
      const piece = data.subarray(off, Math.min(data.length, off + 100_000, off + left));
      await send({ part: { $case: 'chunk', value: { path: f.path, offset: off, data: piece } } });
      left -= piece.length;
    }
  }
  if (how === 'cancel') {
    // Drop the call once the store has taken some of the bytes (the rest may be in flight).
    for (let i = 0; i < 200; i++) {
      const status = await client.uploadStatus(uploadId).catch(() => ({ files: [] }));
      if (status.files.some((f) => f.received > 0)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    call.cancel();
  } else {
    call.end();
  }
  return header;
}

/** What the store holds of an upload once no stream writes it any more. */
export async function receivedOnceSettled(client: CheckpointClient, uploadId: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const status = await client.uploadStatus(uploadId).catch(() => undefined);
    if (status && !status.active) return status.files.reduce((n, f) => n + f.received, 0);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`upload ${uploadId} did not settle`);
}
