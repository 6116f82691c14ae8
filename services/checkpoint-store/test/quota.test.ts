// Staging is bounded: an upload that would stage more than one upload may, or take uploads in
// progress past what all may stage together, is refused with RESOURCE_EXHAUSTED before it
// stages a byte; uploads in progress and stored checkpoints are untouched, and the refused one
// goes through once others finish. A store restarted with a lower bound removes the partial
// uploads that no longer fit.
import * as grpc from '@grpc/grpc-js';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { storeSettings } from '../src';
import { expectSameTree, receivedOnceSettled, sendPartOfUpload, startTestStore, tempDir, TestStore } from './helpers';

const KB = 1000;

/** A checkpoint folder of one file of `bytes` random-ish bytes (distinct per `seed`). */
async function folder(work: string, name: string, bytes: number, seed: number): Promise<string> {
  const dir = path.join(work, name);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'weights.bin'), Buffer.alloc(bytes, seed));
  return dir;
}

describe('the staging quota', () => {
  let t: TestStore | undefined;
  let work: string;
  beforeAll(async () => {
    work = await tempDir();
  });
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  const staged = async (store: TestStore) => (await fsp.readdir(path.join(store.root, 'store', 'uploads'))).sort();

  it('refuses an upload bigger than one upload may stage, staging nothing', async () => {
    t = await startTestStore({ quota: { uploadBytes: 50 * KB, totalBytes: 500 * KB } });
    const src = await folder(work, 'big', 60 * KB, 1);
    const err = await t.client.pushDir(src, { runId: 'quota', step: 1 }, { uploadId: 'too-big' }).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.message).toContain('upload too-big would stage 60000 bytes, more than the 50000 one upload may (TEMPER_CHECKPOINT_UPLOAD_MAX_GIB)');
    expect(await staged(t)).toEqual([]);
    expect((await t.client.list({ runId: 'quota' })).checkpoints).toEqual([]);
    // Content the store holds already stages nothing, so it is no upload over the bound.
    const small = await folder(work, 'small', 40 * KB, 2);
    await t.client.pushDir(small, { runId: 'quota', step: 2 });
    await fsp.copyFile(path.join(small, 'weights.bin'), path.join(src, 'weights.bin'));
    expect((await t.client.pushDir(src, { runId: 'quota', step: 3 })).bytesSent).toBe(0);
  });

  it('refuses an upload that would take all uploads in progress past the bound; the others and the stored checkpoints are intact', async () => {
    t = await startTestStore({ quota: { uploadBytes: 50 * KB, totalBytes: 100 * KB } });
    const stored = await folder(work, 'stored', 30 * KB, 3);
    const kept = await t.client.pushDir(stored, { runId: 'quota-all', step: 1 });
    // Two uploads in progress: 40 + 40 KB reserved, some of it staged.
    const a = await folder(work, 'a', 40 * KB, 4);
    const b = await folder(work, 'b', 40 * KB, 5);
    await sendPartOfUpload(t.client, a, 'upload-a', 15 * KB, 'end', { runId: 'quota-all', step: 2 });
    await sendPartOfUpload(t.client, b, 'upload-b', 25 * KB, 'end', { runId: 'quota-all', step: 3 });
    expect(await receivedOnceSettled(t.client, 'upload-a')).toBe(15 * KB);
    expect(await receivedOnceSettled(t.client, 'upload-b')).toBe(25 * KB);
    expect(t.store.uploads.reservedBytes()).toBe(80 * KB);

    const c = await folder(work, 'c', 30 * KB, 6);
    const err = await t.client.pushDir(c, { runId: 'quota-all', step: 4 }, { uploadId: 'upload-c' }).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.message).toContain('upload upload-c would stage 30000 bytes, but uploads in progress hold 80000 of the 100000 all may (TEMPER_CHECKPOINT_STAGING_MAX_GIB)');
    expect(await staged(t)).toEqual(['upload-a', 'upload-b']);
    expect(await receivedOnceSettled(t.client, 'upload-a')).toBe(15 * KB);
    expect(await receivedOnceSettled(t.client, 'upload-b')).toBe(25 * KB);

    // The uploads in progress finish from where they were; the stored checkpoint still reads back.
    const doneA = await t.client.pushDir(a, { runId: 'quota-all', step: 2 }, { uploadId: 'upload-a' });
    expect(doneA.bytesSent).toBe(25 * KB);
    await t.client.pushDir(b, { runId: 'quota-all', step: 3 }, { uploadId: 'upload-b' });
    for (const [ref, src] of [[kept.manifest.id, stored], [doneA.manifest.id, a]]) {
      const out = path.join(work, `pulled-${ref.slice(0, 8)}`);
      await t.client.pullDir(ref, out);
      await expectSameTree(src, out);
    }
    // Their staging is released: the refused upload now fits.
    expect(t.store.uploads.reservedBytes()).toBe(0);
    expect((await t.client.pushDir(c, { runId: 'quota-all', step: 4 }, { uploadId: 'upload-c' })).created).toBe(true);
    expect(await staged(t)).toEqual([]);
  });

  it('at a restart with a lower bound, removes the partial uploads that no longer fit', async () => {
    t = await startTestStore();
    const root = t.root;
    const big = await folder(work, 'restart-big', 80 * KB, 7);
    const small = await folder(work, 'restart-small', 20 * KB, 8);
    await sendPartOfUpload(t.client, big, 'partial-big', 30 * KB, 'end', { runId: 'quota-restart', step: 1 });
    await sendPartOfUpload(t.client, small, 'partial-small', 5 * KB, 'end', { runId: 'quota-restart', step: 2 });
    expect(await receivedOnceSettled(t.client, 'partial-big')).toBe(30 * KB);
    expect(await receivedOnceSettled(t.client, 'partial-small')).toBe(5 * KB);
    await t.stop(true);

    t = await startTestStore({ root, quota: { uploadBytes: 50 * KB, totalBytes: 100 * KB } });
    expect(await staged(t)).toEqual(['partial-small']);
    expect(t.store.uploads.reservedBytes()).toBe(20 * KB);
    const err = await t.client.pushDir(big, { runId: 'quota-restart', step: 1 }, { uploadId: 'partial-big' }).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const resumed = await t.client.pushDir(small, { runId: 'quota-restart', step: 2 }, { uploadId: 'partial-small' });
    expect(resumed.bytesSent).toBe(15 * KB);
  });
});

describe('staging quota settings', () => {
  it('default to 128 GiB an upload and 256 GiB in all, and take GiB from the environment', () => {
    expect(storeSettings({}).quota).toEqual({ uploadBytes: 128 * 2 ** 30, totalBytes: 256 * 2 ** 30 });
    expect(storeSettings({ TEMPER_CHECKPOINT_UPLOAD_MAX_GIB: '0.5', TEMPER_CHECKPOINT_STAGING_MAX_GIB: '3' }).quota).toEqual({ uploadBytes: 2 ** 29, totalBytes: 3 * 2 ** 30 });
  });

  it('name the variable that is not a positive number', () => {
    expect(() => storeSettings({ TEMPER_CHECKPOINT_STAGING_MAX_GIB: '-1' })).toThrow('TEMPER_CHECKPOINT_STAGING_MAX_GIB must be a number of GiB > 0 (e.g. 0.5 or 64), not "-1"');
    expect(() => storeSettings({ TEMPER_CHECKPOINT_UPLOAD_MAX_GIB: 'lots' })).toThrow(/TEMPER_CHECKPOINT_UPLOAD_MAX_GIB must be a number of GiB/);
  });
});
