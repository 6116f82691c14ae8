// A commit is announced on JetStream (TEMPER_EVENTS, temper.events.checkpoints.<run>) with
// the manifest and policy version; a second push of the same checkpoint announces nothing.
// A stored checkpoint is announced as a new policy version through the store (announce),
// which is the only publisher of commits.
import * as grpc from '@grpc/grpc-js';
import { DeliverPolicy } from '@nats-io/jetstream';
import { Bus, streams, subjects } from '@temper/bus';
import { CheckpointCommitted } from '@temper/proto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { makeModelDir, startTestStore, tempDir, TestStore } from './helpers';

describe('CheckpointCommitted on JetStream', () => {
  let t: TestStore;
  let work: string;
  beforeAll(async () => {
    t = await startTestStore({ events: true });
    work = await tempDir();
  });
  afterAll(async () => {
    await t?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('publishes the committed manifest once per checkpoint', async () => {
    const runId = `events-${process.pid}-${Date.now()}`;
    const src = await makeModelDir(path.join(work, 'src'), { shards: 1, shardBytes: 10_000 });
    const pushed = await t.client.pushDir(src, { runId, branch: 'main', stage: 'grpo', step: 12 }, { policyVersion: 12 });
    const again = await t.client.pushDir(src, { runId, branch: 'main', stage: 'grpo', step: 12 }, { policyVersion: 12, uploadId: 'events-again' });
    expect(again.created).toBe(false);

    const events = await committedEvents(t.bus!, runId);
    expect(events).toHaveLength(1);
    expect(events[0].policyVersion).toBe(12);
    expect(events[0].manifest).toEqual(pushed.manifest);
  });

  it('announces a stored checkpoint as a new policy version, sending no file bytes', async () => {
    const runId = `announce-${process.pid}-${Date.now()}`;
    const src = await makeModelDir(path.join(work, 'announce'), { shards: 1, shardBytes: 10_000 });
    const pushed = await t.client.pushDir(src, { runId, branch: 'main', stage: 'grpo', step: 4 }, { policyVersion: 4 });
    const before = await t.store.list({ runId });
    const announced = await t.client.announce(pushed.manifest, 9);
    expect(announced).toEqual(pushed.manifest);
    expect((await t.store.list({ runId })).checkpoints).toEqual(before.checkpoints);
    expect((await committedEvents(t.bus!, runId)).map((e) => [e.manifest!.id, e.policyVersion])).toEqual([
      [pushed.manifest.id, 4],
      [pushed.manifest.id, 9],
    ]);
    // Announcing the same version again is the same message: dropped as a duplicate.
    await t.client.announce(pushed.manifest, 9);
    expect(await committedEvents(t.bus!, runId)).toHaveLength(2);
  });

  it('refuses to announce a checkpoint whose files the store does not hold', async () => {
    const runId = `announce-missing-${process.pid}-${Date.now()}`;
    const src = await makeModelDir(path.join(work, 'missing'), { shards: 1, shardBytes: 10_000 });
    const { manifest } = await t.client.pushDir(src, { runId, branch: 'main', step: 1 });
    const other = { ...manifest, files: manifest.files.map((f, i) => (i === 0 ? { ...f, sha256: 'ab'.repeat(32) } : f)) };
    const err = await t.client.announce(other, 3).catch((e) => e);
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.message).toContain(`the store no longer holds ${manifest.files[0].path}`);
    // Only the push's own commit (no policy version) was announced.
    expect((await committedEvents(t.bus!, runId)).map((e) => e.policyVersion)).toEqual([0]);
    await expect(t.client.announce(manifest, 0)).rejects.toThrow(/policyVersion must be a whole number >= 1/);
  });
});

async function committedEvents(bus: Bus, runId: string): Promise<CheckpointCommitted[]> {
  const consumer = await bus.js.consumers.get(streams.events.name, {
    filter_subjects: subjects.checkpointCommitted(runId), // a string: nats-server 2.9 takes one filter
    deliver_policy: DeliverPolicy.All,
  });
  const pending = await consumer.info().then((i) => i.num_pending);
  const events: CheckpointCommitted[] = [];
  if (pending === 0) return events;
  const msgs = await consumer.fetch({ max_messages: pending, expires: 2000 });
  for await (const m of msgs) {
    events.push(CheckpointCommitted.decode(m.data));
    if (events.length === pending) break;
  }
  return events;
}

describe('an announcement that cannot be published', () => {
  let t: TestStore;
  let work: string;
  const published: [string, number][] = [];
  let failNext = true;
  beforeAll(async () => {
    // NATS is away for the first announcement (restarting), back for the next.
    t = await startTestStore({
      onCommitted: async (manifest, version) => {
        if (failNext) {
          failNext = false;
          throw new Error('timeout');
        }
        published.push([manifest.id, version]);
      },
    });
    work = await tempDir();
  });
  afterAll(async () => {
    await t?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('fails the put as UNAVAILABLE, so that the client\'s retry finds the checkpoint stored and announces it', async () => {
    const runId = `unannounced-${process.pid}`;
    const src = await makeModelDir(path.join(work, 'src'), { shards: 1, shardBytes: 10_000 });
    const pushed = await t.client.pushDir(src, { runId, branch: 'main', stage: 'grpo', step: 2 }, { policyVersion: 3 });
    expect(published).toEqual([[pushed.manifest.id, 3]]);
    expect((await t.store.list({ runId })).checkpoints.map((c) => c.id)).toEqual([pushed.manifest.id]);
  });
});

