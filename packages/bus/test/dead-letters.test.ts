// Poison messages on a real JetStream: an undecodable message, one whose handler fails every
// time, and one whose consumer dies on it each time all end up parked on the dead-letter
// subject with their reason and original bytes after a bounded number of deliveries; good
// messages around them are handled, and the work queue is left empty.
import { AckPolicy, RetentionPolicy } from '@nats-io/jetstream';
import { Bus, connectBus, consumeMessages, ensureStreams, publishEncoded, publishMessage, readParked, streams, StreamSpec } from '@temper/bus';
import { RolloutGroup } from '@temper/proto';
import { testNatsUrl } from '../../../test/harness/nats';

describe('dead letters', () => {
  let bus: Bus;
  const stream: StreamSpec = { name: `DLQ_TEST_${process.pid}`, subjects: [`dlq-test.${process.pid}.>`], retention: RetentionPolicy.Workqueue, duplicateWindowS: 60 };
  const subject = `dlq-test.${process.pid}.run`;
  const consumer = `dlq_test_${process.pid}`;
  beforeAll(async () => {
    bus = await connectBus(testNatsUrl(), 'dlq-test');
    await ensureStreams(bus.jsm, [stream, streams.deadLetters]);
    await bus.jsm.consumers.add(stream.name, { durable_name: consumer, ack_policy: AckPolicy.Explicit, ack_wait: 1e9, filter_subject: subject });
  });
  afterAll(async () => {
    await bus.jsm.streams.delete(stream.name);
    await bus.close();
  });

  const parked = (count: number) => readParked(bus.js, stream.name, consumer, count, 10000);

  it('parks what cannot be handled, with the reason, after a bounded number of deliveries', async () => {
    const group = (i: number) => RolloutGroup.fromPartial({ key: { runId: 'r', step: 1, groupIndex: i } });
    const garbage = Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    await publishMessage(bus.js, subject, RolloutGroup, group(0));
    await publishEncoded(bus.js, subject, garbage, { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    await publishMessage(bus.js, subject, RolloutGroup, group(13)); // the handler always fails on 13
    await publishMessage(bus.js, subject, RolloutGroup, group(1));

    const handled: number[] = [];
    let failures = 0;
    const sub = await consumeMessages(bus.js, RolloutGroup, { stream: stream.name, consumer, maxDeliveries: 3, retryDelayMs: 50 }, async (d) => {
      const i = d.message.key!.groupIndex;
      if (i === 13) {
        failures++;
        throw new Error('scoring exploded');
      }
      handled.push(i);
    });
    try {
      const dead = await parked(2);
      const byReason = (re: RegExp) => dead.find((p) => re.test(p.reason));
      const undecodable = byReason(/^undecodable: /)!;
      expect(Buffer.from(undecodable.data)).toEqual(Buffer.from(garbage));
      expect(undecodable).toEqual(expect.objectContaining({ stream: stream.name, subject, consumer, deliveries: 1 }));
      const failing = byReason(/^failed on each of 3 deliveries, the last with: scoring exploded$/)!;
      expect(RolloutGroup.decode(failing.data).key?.groupIndex).toBe(13);
      expect(failures).toBe(3);
      expect(handled.sort()).toEqual([0, 1]);
    } finally {
      await sub.stop();
    }

    // A message its consumer dies on each time (a process killed mid-handling): every life
    // gets it once and never answers; the delivery after the bound is parked unhandled.
    await publishMessage(bus.js, subject, RolloutGroup, group(99));
    for (let life = 1; life <= 3; life++) {
      let got: () => void = () => {};
      const delivered = new Promise<void>((r) => (got = r));
      const dying = await consumeMessages(bus.js, RolloutGroup, { stream: stream.name, consumer, maxDeliveries: 3 }, async () => {
        got();
        await new Promise<void>(() => undefined);
      });
      await delivered;
      // Its loop stays stuck in the handler, as a dead process's would: only the subscription goes.
      await Promise.race([dying.stop(), new Promise((r) => setTimeout(r, 200))]);
    }
    let handledAfterBound = false;
    const last = await consumeMessages(bus.js, RolloutGroup, { stream: stream.name, consumer, maxDeliveries: 3 }, async () => {
      handledAfterBound = true;
    });
    try {
      const hung = (await parked(3)).find((p) => /without being handled/.test(p.reason))!;
      expect(hung.reason).toBe('delivered 4 times without being handled (its consumer failed or died on it each time)');
      expect(RolloutGroup.decode(hung.data).key?.groupIndex).toBe(99);
      expect(handledAfterBound).toBe(false);
    } finally {
      await last.stop();
    }
    // Nothing is left on the work queue (the last TERM may still be on its way).
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++, await new Promise((r) => setTimeout(r, 100))) left = (await bus.jsm.streams.info(stream.name)).state.messages;
    expect(left).toBe(0);
  }, 60000);
});

