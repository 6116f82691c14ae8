import { AckPolicy } from '@nats-io/jetstream';
import * as fs from 'node:fs';
import { Bus, connectBus, consumeMessages, ensureStreams, natsAuth, natsTls, publishMessage, startNatsServer, streams, StreamSpec } from '@temper/bus';
import { RetentionPolicy } from '@nats-io/jetstream';
import { RolloutGroup, FinishReason } from '@temper/proto';
import { initTracing, traceIds, withSpan } from '@temper/telemetry';
import { trace } from '@opentelemetry/api';
import { testNatsUrl } from '../../../test/harness/nats';

describe('protobuf over JetStream', () => {
  let bus: Bus;
  let n = 0;
  // A work-queue stream of this test's own, shaped like Temper's: consumers on the real ones
  // belong to the services (a work queue refuses overlapping consumers).
  const stream: StreamSpec = { name: `BUS_TEST_${process.pid}`, subjects: [`bus-test.${process.pid}.>`], retention: RetentionPolicy.Workqueue, duplicateWindowS: 60 };
  const subject = (runId: string) => `bus-test.${process.pid}.${runId}`;
  beforeAll(async () => {
    bus = await connectBus(testNatsUrl(), 'bus-test');
    await ensureStreams(bus.jsm, [stream, streams.deadLetters]);
  });
  afterAll(async () => {
    await bus.jsm.streams.delete(stream.name);
    await bus.close();
  });

  // A consumer of our own on the test stream, filtered to one fresh run.
  async function freshRun() {
    const runId = `bus-test-${process.pid}-${++n}`;
    const consumer = `bus_test_${process.pid}_${n}`;
    await bus.jsm.consumers.add(stream.name, {
      durable_name: consumer,
      ack_policy: AckPolicy.Explicit,
      filter_subject: subject(runId),
      ack_wait: 2e9,
    });
    return { runId, consumer };
  }

  function group(runId: string, groupIndex: number): RolloutGroup {
    return RolloutGroup.fromPartial({
      key: { runId, step: 3, groupIndex },
      prompt: { text: 'What is 6 * 7?', tokenIds: [10, 11, 12] },
      reference: '42',
      policyVersion: 2,
      completions: [
        { text: '<answer>42</answer>', tokenIds: [1, 2, 3], logprobs: [-0.5, -0.25, -1.5], finishReason: FinishReason.FINISH_REASON_STOP },
      ],
    });
  }

  it('publishes and consumes a RolloutGroup with headers intact', async () => {
    const { runId, consumer } = await freshRun();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await publishMessage(bus.js, subject(runId), RolloutGroup, group(runId, 0), {
      msgId: `${runId}/3/0`,
      headers: { traceparent },
    });
    const got = await new Promise<{ g: RolloutGroup; h: Record<string, string> }>((resolve) => {
      void consumeMessages(bus.js, RolloutGroup, { stream: stream.name, consumer }, async (d) => {
        resolve({ g: d.message, h: d.headers });
      });
    });
    expect(got.g).toEqual(group(runId, 0));
    expect(got.g.completions[0].logprobs).toEqual([-0.5, -0.25, -1.5]);
    expect(got.h.traceparent).toBe(traceparent);
  });

  it('runs the handler inside the trace context the message was published in', async () => {
    const tracing = initTracing('bus-test'); // no endpoint: spans stay in-process
    const { runId, consumer } = await freshRun();
    let published: { trace_id?: string; span_id?: string } = {};
    await withSpan(tracing.tracer, 'publish', {}, async () => {
      published = traceIds();
      await publishMessage(bus.js, subject(runId), RolloutGroup, group(runId, 5));
    });
    const seen = await new Promise<{ active: string | undefined; fromDelivery: string | undefined }>((resolve) => {
      void consumeMessages(bus.js, RolloutGroup, { stream: stream.name, consumer }, async (d) => {
        resolve({ active: trace.getActiveSpan()?.spanContext().traceId ?? traceIds().trace_id, fromDelivery: traceIds(d.context).trace_id });
      });
    });
    expect(published.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(seen.fromDelivery).toBe(published.trace_id);
    expect(seen.active).toBe(published.trace_id);
    await tracing.shutdown();
  });

  it('stores a message published twice with the same id once', async () => {
    const { runId } = await freshRun();
    const first = await publishMessage(bus.js, subject(runId), RolloutGroup, group(runId, 1), { msgId: `${runId}/3/1` });
    const again = await publishMessage(bus.js, subject(runId), RolloutGroup, group(runId, 1), { msgId: `${runId}/3/1` });
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
  });

  it('redelivers a message whose handler failed, and parks one that cannot be decoded (dead-letters.test.ts)', async () => {
    const { runId, consumer } = await freshRun();
    await bus.js.publish(subject(runId), new Uint8Array([0xff, 0xff, 0xff]));
    await publishMessage(bus.js, subject(runId), RolloutGroup, group(runId, 2));
    const errors: unknown[] = [];
    const deliveries: number[] = [];
    const done = new Promise<void>((resolve) => {
      void consumeMessages(
        bus.js,
        RolloutGroup,
        { stream: stream.name, consumer, retryDelayMs: 50, onError: (e) => errors.push(e) },
        async (d) => {
          deliveries.push(d.deliveryCount);
          if (d.deliveryCount === 1) throw new Error('first try fails');
          resolve();
        },
      );
    });
    await done;
    expect(deliveries).toEqual([1, 2]);
    expect(errors).toHaveLength(2); // the undecodable message and the failed first try
  });
});

describe('NATS credentials from the environment', () => {
  it('prefers a creds file, then a token, then user and password', () => {
    expect(natsAuth({})).toEqual({});
    expect(natsAuth({ NATS_USER: 'u', NATS_PASSWORD: 'p' })).toEqual({ user: 'u', pass: 'p' });
    expect(natsAuth({ NATS_TOKEN: 't', NATS_USER: 'u' })).toEqual({ token: 't' });
    expect(() => natsAuth({ NATS_CREDS: '/nonexistent/temper.creds' })).toThrow(/cannot read NATS_CREDS \/nonexistent\/temper.creds/);
  });

  it('reads TLS files from NATS_TLS_*, naming the variable of a file it cannot read', () => {
    expect(natsTls({})).toEqual({});
    expect(() => natsTls({ NATS_TLS_CA: '/nonexistent/ca.crt' })).toThrow(/cannot read NATS_TLS_CA \/nonexistent\/ca.crt/);
    expect(() => natsTls({ NATS_TLS_CERT: __filename })).toThrow(/NATS_TLS_CERT and NATS_TLS_KEY go together/);
    expect(natsTls({ NATS_TLS_CA: __filename })).toEqual({ tls: { ca: fs.readFileSync(__filename, 'utf8') } });
  });

  it('connects to a server that requires a user and password', async () => {
    const server = await startNatsServer({ args: ['--user', 'temper', '--pass', 's3cret'] });
    try {
      await expect(connectBus(server.url, 'auth-test-anonymous')).rejects.toThrow(/cannot reach NATS/);
      process.env.NATS_USER = 'temper';
      process.env.NATS_PASSWORD = 's3cret';
      const authed = await connectBus(server.url, 'auth-test');
      await authed.close();
    } finally {
      delete process.env.NATS_USER;
      delete process.env.NATS_PASSWORD;
      await server.stop();
    }
  });
});
