// The GRPO stage's checkpoint uploads against a real store: held until released, in step
// order, each the child of the one before; a failed upload fails what follows it and is
// thrown with its cause (the first one) where the stage waits or checks, never dropped.
import { freePort } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-client';
import { CheckpointStore, checkpointStoreBinding, FsBackend } from '@temper/checkpoint-store';
import { HfConfig, Model } from '@temper/native';
import { RunSpec, StageSpec } from '@temper/proto';
import { startGrpcServer } from '@temper/service';
import { createTokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeCheckpoint } from '../src/checkpoints';
import { CheckpointUploads } from '../src/grpo/checkpoint-uploads';
import { StageHarness, startStageHarness, tinyConfig } from './stage-harness';

describe('checkpoint uploads behind the GRPO steps', () => {
  let h: StageHarness;
  let model: Model;
  beforeAll(async () => {
    h = await startStageHarness();
    model = await Model.create({ ...tinyConfig, vocab_size: createTokenizer({ kind: 'byte' }).vocabSize } as HfConfig, { seed: 3, threads: 1 });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const context = () => h.context(RunSpec.fromPartial({}), StageSpec.fromPartial({ name: 'rl' }));
  const write = (runId: string, step: number) =>
    writeCheckpoint(model, { tokenizer: { kind: 'byte' }, manifest: { runId, stage: 'rl', step, branch: 'main' }, policyVersion: step + 1 });

  it('holds an upload until released, then stores the steps in order, each the child of the one before', async () => {
    const ctx = context();
    const first = await (await write(ctx.runId, 0)).push(h.store);
    const uploads = new CheckpointUploads(ctx, first.id);
    uploads.add(1, write(ctx.runId, 1), false);
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.store.list({ runId: ctx.runId })).checkpoints.map((c) => c.step)).toEqual([0]);
    uploads.add(2, write(ctx.runId, 2), true); // releases step 1's
    const latest = await uploads.latest();
    const { checkpoints } = await h.store.list({ runId: ctx.runId });
    const byStep = new Map(checkpoints.map((c) => [c.step, c]));
    expect(latest).toBe(byStep.get(2)!.id);
    expect(byStep.get(2)!.parentId).toBe(byStep.get(1)!.id);
    expect(byStep.get(1)!.parentId).toBe(first.id);
    // Only a full checkpoint is reported as the run's.
    expect(ctx.checkpoints).toEqual([latest]);
    expect(await uploads.end()).toBeUndefined();
  });

  it('fails what follows a failed upload and throws the first failure with its cause', async () => {
    const ctx = context();
    // A parent the store does not hold: the first upload is refused.
    const uploads = new CheckpointUploads(ctx, 'f'.repeat(64));
    uploads.add(1, write(ctx.runId, 1), false);
    uploads.add(2, write(ctx.runId, 2), false);
    const failure = (await uploads.latest().then(
      () => undefined,
      (e: Error) => e,
    ))!;
    expect(failure).toBeInstanceOf(Error);
    expect(failure.message).toMatch(/^the checkpoint of step 1 could not be stored: .*parent_id f{64} is not a checkpoint in the store/);
    expect((failure.cause as Error).message).toMatch(/parent_id f{64} is not a checkpoint in the store/);
    expect(() => uploads.check()).toThrow(failure);
    expect(await uploads.end()).toBe(failure);
    expect((await h.store.list({ runId: ctx.runId })).checkpoints).toEqual([]);
  });

  it('waits out a store that is away for a while (restarting) instead of failing the run', async () => {
    // Nothing listens at the store's address for 6 s (the client's default tries gave up after
    // about 3 s: a killed store failed the chaos run), then a store comes up there.
    const address = `127.0.0.1:${await freePort()}`;
    const client = new CheckpointClient(address);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-late-store-'));
    const ctx = context();
    const pushed = (await write(ctx.runId, 0)).push(client);
    await new Promise((r) => setTimeout(r, 6000));
    const late = await serveStoreAt(address, root);
    try {
      const manifest = await pushed;
      expect((await client.list({ runId: ctx.runId })).checkpoints.map((c) => c.id)).toEqual([manifest.id]);
    } finally {
      client.close();
      await late.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('holds a step back while more than a few uploads are behind it, until the store takes them', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const client = new CheckpointClient(address);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-late-store-'));
    const ctx = { ...context(), store: client };
    const uploads = new CheckpointUploads(ctx, '');
    for (const step of [1, 2, 3]) uploads.add(step, write(ctx.runId, step), false);
    let caughtUp = false;
    const waiting = uploads.behindAtMost(1).then(() => (caughtUp = true));
    await new Promise((r) => setTimeout(r, 3000));
    expect(caughtUp).toBe(false); // nothing could be stored: three behind
    const late = await serveStoreAt(address, root);
    try {
      await waiting;
      // Steps 1 and 2 are stored; step 3's, the newest, is still held back for the next step's requests.
      expect((await client.list({ runId: ctx.runId })).checkpoints.map((c) => c.step).sort()).toEqual([1, 2]);
      await uploads.latest();
      expect((await client.list({ runId: ctx.runId })).checkpoints).toHaveLength(3);
    } finally {
      client.close();
      await late.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});

/** A checkpoint store served at `address` from `root`, started late: the store a learner waited for. */
async function serveStoreAt(address: string, root: string): Promise<{ stop: () => Promise<void> }> {
  const store = await CheckpointStore.open({ backend: await FsBackend.open(path.join(root, 'store')), stagingDir: path.join(root, 'uploads') });
  const server = await startGrpcServer({ address, services: [checkpointStoreBinding(store)] });
  return {
    stop: async () => {
      await server.stop(1000);
      await store.close();
    },
  };
}
