// Hashes are checked on the way in and on the way out: bytes that do not match their
// declared sha256 are discarded, and a stored file that went bad is never served.
import * as grpc from '@grpc/grpc-js';
import { CheckpointManifest, PutHeader } from '@temper/proto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { describeDir, hashFiles, listFiles } from '@temper/checkpoint-client';
import { makeModelDir, startTestStore, tempDir, TestStore } from './helpers';

describe('integrity', () => {
  let t: TestStore;
  let work: string;
  beforeAll(async () => {
    t = await startTestStore();
    work = await tempDir();
  });
  afterAll(async () => {
    await t?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('detects a corrupted stored file and refuses to serve it', async () => {
    const src = await makeModelDir(path.join(work, 'src'), { shards: 2, shardBytes: 400_000 });
    const { manifest } = await t.client.pushDir(src, { runId: 'integrity', branch: 'main' });
    const shard = manifest.files.find((f) => f.path === 'model-00002-of-00002.safetensors')!;
    const blob = path.join(t.root, 'store', 'blobs', shard.sha256.slice(0, 2), shard.sha256);
    const fh = await fsp.open(blob, 'r+');
    await fh.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, 123_456); // flip a few bytes in place
    await fh.close();

    const dest = path.join(work, 'dest');
    const err = await t.client.pullDir(manifest.id, dest, { chunkBytes: 64 * 1024 }).catch((e) => e);
    expect(err).toMatchObject({ code: grpc.status.DATA_LOSS });
    expect(err.message).toContain('model-00002-of-00002.safetensors');
    expect(err.message).toContain('corrupt');
    // Nothing of the checkpoint appeared, not even the files that were good.
    expect(await listFiles(dest)).toEqual([]);
    expect(await fsp.readdir(dest)).toEqual([]);

    // Healthy files of the same checkpoint are still served on their own.
    await t.client.pullDir(manifest.id, dest, { paths: ['config.json'] });
    expect(await listFiles(dest)).toEqual(['config.json']);
  });

  it('detects a truncated stored file', async () => {
    const src = await makeModelDir(path.join(work, 'src2'), { shards: 1, shardBytes: 300_000 });
    const { manifest } = await t.client.pushDir(src, { runId: 'integrity', branch: 'truncated' });
    const shard = manifest.files.find((f) => f.path.endsWith('.safetensors'))!;
    await fsp.truncate(path.join(t.root, 'store', 'blobs', shard.sha256.slice(0, 2), shard.sha256), 1000);
    const err = await t.client.pullDir(manifest.id, path.join(work, 'dest2')).catch((e) => e);
    expect(err).toMatchObject({ code: grpc.status.DATA_LOSS });
    expect(err.message).toContain('read 1000 bytes');
  });

  it('takes a hash the caller already knows, and still refuses bytes that do not match it', async () => {
    const own = await startTestStore(); // the refused upload stays staged, to be resumed
    const src = await makeModelDir(path.join(work, 'src-known'), { shards: 1, shardBytes: 200_000 });
    const shard = (await listFiles(src)).find((f) => f.endsWith('.safetensors'))!;
    const sha = createHash('sha256').update(await fsp.readFile(path.join(src, shard))).digest('hex');
    const { manifest } = await own.client.pushDir(src, { runId: 'integrity', branch: 'known' }, { knownSha256: { [shard]: sha } });
    expect(manifest.files).toEqual(await describeDir(src));
    const wrong = createHash('sha256').update('other bytes, never stored').digest('hex');
    const err = await own.client.pushDir(src, { runId: 'integrity', branch: 'known-wrong' }, { knownSha256: { [shard]: wrong }, retries: 0 }).catch((e) => e);
    await own.stop();
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(err.message).toContain(shard);
  });

  it('discards uploaded bytes that do not match the declared hash', async () => {
    const src = path.join(work, 'src3');
    await fsp.mkdir(src);
    await fsp.writeFile(path.join(src, 'config.json'), JSON.stringify({ unique: 'to this test', at: Date.now() }));
    const files = await describeDir(src);
    const config = files[0];
    const header = PutHeader.fromPartial({ uploadId: 'bad-bytes', manifest: CheckpointManifest.fromPartial({ runId: 'integrity', files }) });
    const wrong = Buffer.alloc(config.size, 0x41);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = t.client.raw.putCheckpoint((e) => resolve(e));
      call.write({ part: { $case: 'header', value: header } });
      call.write({ part: { $case: 'chunk', value: { path: 'config.json', offset: 0, data: wrong } } });
      call.end();
    });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain('config.json');
    expect(err?.details).toContain(config.sha256);
    expect(await t.backend.hasBlob(config.sha256)).toBe(false);
    const { files: status } = await t.client.uploadStatus('bad-bytes');
    expect(status.find((f) => f.path === 'config.json')).toMatchObject({ received: 0, complete: false });
  });

  it('stores concurrent uploads of the same content once, as one checkpoint', async () => {
    const src = await makeModelDir(path.join(work, 'same'), { shards: 2, shardBytes: 500_000 });
    const fields = { runId: 'concurrent', branch: 'main', step: 3 };
    const results = await Promise.all([
      t.client.pushDir(src, fields),
      t.client.pushDir(src, fields),
      t.client.pushDir(src, fields, { uploadId: 'concurrent-x', chunkBytes: 32 * 1024 }),
      t.client.pushDir(src, fields, { uploadId: 'concurrent-y', chunkBytes: 128 * 1024 }),
    ]);
    const ids = new Set(results.map((r) => r.manifest.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect((await t.client.list({ runId: 'concurrent' })).checkpoints).toHaveLength(1);
    const shas = new Set(results[0].manifest.files.map((f) => f.sha256));
    expect((await t.backend.listBlobs()).filter((b) => shas.has(b))).toHaveLength(shas.size);
    // No staging is left behind and nothing half-written is visible in the store.
    expect(await fsp.readdir(path.join(t.root, 'store', 'uploads'))).toEqual(['bad-bytes']);
    expect(await fsp.readdir(path.join(t.root, 'store', 'tmp'))).toEqual([]);
    const out = path.join(work, 'same-out');
    await t.client.pullDir([...ids][0], out);
    expect(await listFiles(out)).toEqual(await listFiles(src));
  });

  it('sweeps abandoned uploads and the files only they held', async () => {
    const src = path.join(work, 'abandoned');
    await fsp.mkdir(src);
    await fsp.writeFile(path.join(src, 'a.bin'), `only in the abandoned upload ${Date.now()}`);
    await fsp.writeFile(path.join(src, 'b.bin'), 'never sent');
    const files = await describeDir(src);
    const header = PutHeader.fromPartial({ uploadId: 'abandoned', manifest: CheckpointManifest.fromPartial({ runId: 'integrity', files }) });
    const a = files.find((f) => f.path === 'a.bin')!;
    const data = await fsp.readFile(path.join(src, 'a.bin'));
    await new Promise<void>((resolve) => {
      const call = t.client.raw.putCheckpoint(() => resolve());
      call.write({ part: { $case: 'header', value: header } });
      call.write({ part: { $case: 'chunk', value: { path: 'a.bin', offset: 0, data } } });
      call.end();
    });
    expect(await t.backend.hasBlob(a.sha256)).toBe(true); // verified and stored as soon as it was complete
    const blobsBefore = (await t.backend.listBlobs()).length;

    // Not yet idle for an hour: kept.
    expect((await t.store.sweep(3600_000)).uploads).toEqual([]);
    const swept = await t.store.sweep(0);
    expect(swept.uploads).toEqual(expect.arrayContaining(['abandoned', 'bad-bytes']));
    expect(swept.blobs).toBe(1);
    expect(await t.backend.hasBlob(a.sha256)).toBe(false);
    expect((await t.backend.listBlobs()).length).toBe(blobsBefore - 1);
    await expect(t.client.uploadStatus('abandoned')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    // Committed checkpoints are untouched.
    const { checkpoints } = await t.client.list({ runId: 'integrity' });
    expect(checkpoints.length).toBeGreaterThan(0);
    await t.client.pullDir(checkpoints[0].id, path.join(work, 'after-sweep'), { paths: ['config.json'] });
  });
  it('hashes files on two threads to the same digests, and names a file it cannot read', async () => {
    const dir = path.join(work, 'hashing');
    await fsp.mkdir(dir);
    const contents = [3_000_000, 1, 0, 5_000_123, 700_000].map((n, i) => Buffer.alloc(n, i + 1));
    const files = contents.map((_, i) => path.join(dir, `f${i}`));
    for (const [i, f] of files.entries()) await fsp.writeFile(f, contents[i]);
    // 64 KiB chunks: several reads per file, and a last one that is partly filled.
    const digests = await hashFiles(files, { chunkBytes: 64 << 10, parallelMinBytes: 0 });
    expect(digests).toEqual(contents.map((c) => ({ sha256: createHash('sha256').update(c).digest('hex'), size: c.length })));

    // Directories pass the size check but cannot be read: one on each thread.
    for (const d of ['d1', 'd2']) await fsp.mkdir(path.join(dir, d));
    const err = await hashFiles([files[0], path.join(dir, 'd1'), path.join(dir, 'd2')], { parallelMinBytes: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/cannot hash .*d[12]: .*EISDIR/);
  });
});
