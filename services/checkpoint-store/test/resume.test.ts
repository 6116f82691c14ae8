// An upload cut off mid-file continues from what arrived, also after the store restarts;
// until it is committed nothing of it is visible.
import * as grpc from '@grpc/grpc-js';
import { PutHeader } from '@temper/proto';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { startGrpcServer } from '@temper/service';
import { CheckpointClient, describeDir } from '@temper/checkpoint-client';
import { Backend, CheckpointStore, checkpointStoreBinding } from '../src';
import { expectSameTree, makeModelDir, receivedOnceSettled, sendPartOfUpload, startTestStore, tempDir, TestStore } from './helpers';

describe('resumable uploads', () => {
  let t: TestStore;
  let work: string;
  beforeAll(async () => {
    work = await tempDir();
  });
  afterEach(async () => {
    await t?.stop();
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  const interruptedUpload = (src: string, uploadId: string, bytes: number, how: 'end' | 'cancel') => sendPartOfUpload(t.client, src, uploadId, bytes, how);
  const settledReceived = (uploadId: string) => receivedOnceSettled(t.client, uploadId);

  it('continues an interrupted upload from where it stopped', async () => {
    t = await startTestStore();
    const src = await makeModelDir(path.join(work, 'a'), { shards: 2, shardBytes: 600_000 });
    const files = await describeDir(src);
    const total = files.reduce((n, f) => n + f.size, 0);
    const cut = 700_000; // the first shard complete, the second partly there
    await interruptedUpload(src, 'resume-a', cut, 'end');
    const received = await settledReceived('resume-a');
    expect(received).toBe(cut);
    const { files: status } = await t.client.uploadStatus('resume-a');
    expect(status.some((f) => f.complete)).toBe(true);
    expect(status.some((f) => !f.complete && f.received > 0)).toBe(true);

    // Nothing is a checkpoint until the commit.
    expect((await t.client.list()).checkpoints).toEqual([]);

    const pushed = await t.client.pushDir(src, { runId: 'resume', branch: 'main', step: 7 }, { uploadId: 'resume-a', chunkBytes: 64 * 1024 });
    expect(pushed.created).toBe(true);
    // Only what had not arrived was sent (files completed earlier and the received prefix are skipped).
    expect(pushed.bytesSent).toBe(total - received);
    await t.client.pullDir(pushed.manifest.id, path.join(work, 'a-out'));
    await expectSameTree(src, path.join(work, 'a-out'));
    // The upload is gone once committed.
    await expect(t.client.uploadStatus('resume-a')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('continues after the store restarts, re-hashing what it kept on disk', async () => {
    t = await startTestStore();
    const root = t.root;
    const src = await makeModelDir(path.join(work, 'b'), { shards: 1, shardBytes: 900_000 });
    const total = (await describeDir(src)).reduce((n, f) => n + f.size, 0);
    await interruptedUpload(src, 'resume-b', 500_000, 'cancel');
    const received = await settledReceived('resume-b');
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThanOrEqual(500_000);
    await t.stop(true);

    t = await startTestStore({ root });
    const { files: status } = await t.client.uploadStatus('resume-b');
    expect(status.reduce((n, f) => n + f.received, 0)).toBe(received);
    const pushed = await t.client.pushDir(src, { runId: 'resume', branch: 'main', step: 7 }, { uploadId: 'resume-b' });
    expect(pushed.bytesSent).toBe(total - received);
    await t.client.pullDir(pushed.manifest.id, path.join(work, 'b-out'));
    await expectSameTree(src, path.join(work, 'b-out'));
  });

  it('finishes a file whose bytes all arrived before the store stopped, and drops one that does not check out', async () => {
    const root = await tempDir();
    const good = Buffer.from('every byte arrived');
    const bad = Buffer.from('these bytes are not what the header says');
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const header = PutHeader.fromPartial({
      uploadId: 'crashed',
      manifest: { runId: 'resume', files: [{ path: 'good.bin', size: good.length, sha256: sha(good) }, { path: 'bad.bin', size: bad.length, sha256: sha(Buffer.from('other')) }] },
    });
    // What a store that stopped between receiving and storing leaves behind.
    const dir = path.join(root, 'store', 'uploads', 'crashed');
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'header.pb'), PutHeader.encode(header).finish());
    await fsp.writeFile(path.join(dir, '0.part'), good);
    await fsp.writeFile(path.join(dir, '1.part'), bad);
    t = await startTestStore({ root });
    const { files } = await t.client.uploadStatus('crashed');
    expect(files).toEqual([
      { path: 'good.bin', received: good.length, complete: true },
      { path: 'bad.bin', received: 0, complete: false },
    ]);
    expect(await t.backend.hasBlob(sha(good))).toBe(true);
  });

  it('refuses chunks past what arrived, and a different header under the same upload id', async () => {
    t = await startTestStore();
    const src = await makeModelDir(path.join(work, 'c'), { shards: 1, shardBytes: 200_000 });
    const files = await describeDir(src);
    const header = PutHeader.fromPartial({ uploadId: 'resume-c', manifest: { runId: 'resume', files } });
    await new Promise((resolve) => t.client.raw.startUpload({ header }, resolve));
    const big = files.find((f) => f.size > 100_000)!;
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const call = t.client.raw.putCheckpoint((e) => resolve(e!));
      call.write({ part: { $case: 'header', value: header } });
      call.write({ part: { $case: 'chunk', value: { path: big.path, offset: 50_000, data: Buffer.alloc(10) } } });
      call.end();
    });
    expect(err.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(err.details).toContain('resume from 0');

    const other = PutHeader.fromPartial({ uploadId: 'resume-c', manifest: { runId: 'another', files } });
    const mismatch = await new Promise<grpc.ServiceError | null>((resolve) => t.client.raw.startUpload({ header: other }, (e) => resolve(e)));
    expect(mismatch?.code).toBe(grpc.status.FAILED_PRECONDITION);

    const early = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = t.client.raw.putCheckpoint((e) => resolve(e));
      call.write({ part: { $case: 'header', value: header } });
      call.write({ part: { $case: 'commit', value: {} } });
      call.end();
    });
    expect(early?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(early?.details).toContain(big.path);
  });

  it('continues a download cut off by a store restart, keeping the files already checked', async () => {
    t = await startTestStore();
    const src = await makeModelDir(path.join(work, 'd'), { shards: 3, shardBytes: 400_000 });
    const { manifest } = await t.client.pushDir(src, { runId: 'resume', branch: 'download' });
    // The store reads slowly, so the download is under way when the server goes down.
    const slow: Backend = Object.create(t.backend);
    let chunksRead = 0;
    slow.readBlob = async function* (sha256, chunkSize, alloc) {
      for await (const chunk of t.backend.readBlob(sha256, chunkSize, alloc)) {
        chunksRead++;
        await new Promise((r) => setTimeout(r, 20));
        yield chunk;
      }
    };
    const slowStore = await CheckpointStore.open({ backend: slow, stagingDir: path.join(t.root, 'slow-uploads') });
    const port = t.server.port;
    await t.server.stop(0);
    let server = await startGrpcServer({ address: `127.0.0.1:${port}`, services: [checkpointStoreBinding(slowStore)] });
    const client = new CheckpointClient(`127.0.0.1:${port}`);
    const dest = path.join(work, 'd-out');
    const pulling = client.pullDir(manifest.id, dest, { chunkBytes: 64 * 1024 });
    // Well past the first shard (7 chunks after 2 small files), partway into the second.
    while (chunksRead < 15) await new Promise((r) => setTimeout(r, 10));
    server.server.forceShutdown();
    // The restarted store records which files it is asked for.
    const asked: string[] = [];
    const recording: Backend = Object.create(t.backend);
    recording.readBlob = (sha256, chunkSize, alloc) => {
      asked.push(manifest.files.find((f) => f.sha256 === sha256)!.path);
      return t.backend.readBlob(sha256, chunkSize, alloc);
    };
    const restarted = await CheckpointStore.open({ backend: recording, stagingDir: path.join(t.root, 'restarted-uploads') });
    server = await startGrpcServer({ address: `127.0.0.1:${port}`, services: [checkpointStoreBinding(restarted)] });
    const pulled = await pulling;
    expect(pulled.manifest.id).toBe(manifest.id);
    await expectSameTree(src, dest);
    // Files checked before the cut were not sent again; the rest were.
    expect(asked).not.toContain('config.json');
    expect(asked).not.toContain('model-00001-of-00003.safetensors');
    expect(asked).toEqual(expect.arrayContaining(['model-00003-of-00003.safetensors', 'tokenizer.json']));
    client.close();
    await server.stop(0);
  });
});
