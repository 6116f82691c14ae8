// A commit is announced on JetStream (TEMPER_EVENTS, temper.events.checkpoints.<run>) with
// the manifest and policy version; a second push of the same checkpoint announces nothing.
import { DeliverPolicy } from '@nats-io/jetstream';
import { streams, subjects } from '@temper/bus';
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

    const bus = t.bus!;
    const consumer = await bus.js.consumers.get(streams.events.name, {
      filter_subjects: subjects.checkpointCommitted(runId), // a string: nats-server 2.9 takes one filter
      deliver_policy: DeliverPolicy.All,
    });
    const events: CheckpointCommitted[] = [];
    const pending = await consumer.info().then((i) => i.num_pending);
    expect(pending).toBe(1);
    const msgs = await consumer.fetch({ max_messages: 10, expires: 2000 });
    for await (const m of msgs) {
      events.push(CheckpointCommitted.decode(m.data));
      if (events.length === pending) break;
    }
    expect(events).toHaveLength(1);
    expect(events[0].policyVersion).toBe(12);
    expect(events[0].manifest).toEqual(pushed.manifest);
  });
});
