// temper up [--smoke]: start the local stack and keep it up until Ctrl-C; with --smoke,
// check every service's health and a JetStream round trip, print the result, and stop.
import { connectBus, consumeMessages, publishMessage, streams, subjects } from '@temper/bus';
import { RolloutRequest } from '@temper/proto';
import { checkHealth } from '@temper/service';
import { AckPolicy } from '@nats-io/jetstream';
import { startLocalStack, LocalStack } from '../local-stack';

export async function up(args: { smoke: boolean; json: boolean }): Promise<number> {
  const stack = await startLocalStack({ logs: args.smoke ? 'ignore' : 'inherit' });
  if (!args.smoke) {
    for (const s of stack.services) process.stdout.write(`${s.name.padEnd(18)} ${s.address}\n`);
    process.stdout.write(`nats               ${stack.natsUrl}\nTemper is up; Ctrl-C stops it.\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await stack.stop();
    return 0;
  }
  try {
    const report = await smoke(stack);
    if (args.json) process.stdout.write(JSON.stringify(report) + '\n');
    else {
      for (const s of report.services) process.stdout.write(`${s.name.padEnd(18)} ${s.address.padEnd(18)} ${s.status}\n`);
      process.stdout.write(`jetstream round trip ${report.jetstreamRoundTripMs.toFixed(1)} ms\n`);
      process.stdout.write(report.ok ? 'smoke: ok\n' : 'smoke: FAILED\n');
    }
    return report.ok ? 0 : 1;
  } finally {
    await stack.stop();
  }
}

interface SmokeReport {
  ok: boolean;
  services: { name: string; address: string; status: string }[];
  jetstreamRoundTripMs: number;
}

async function smoke(stack: LocalStack): Promise<SmokeReport> {
  const services = await Promise.all(
    stack.services.map(async (s) => ({
      name: s.name,
      address: s.address,
      status: await checkHealth(s.address).catch((e: Error) => `error: ${e.message}`),
    })),
  );
  const t0 = performance.now();
  await jetstreamRoundTrip(stack.natsUrl);
  const rtt = performance.now() - t0;
  return { ok: services.every((s) => s.status === 'SERVING'), services, jetstreamRoundTripMs: rtt };
}

// A rollout request published and pulled back through its work-queue stream, on a
// consumer of its own that is removed afterwards.
async function jetstreamRoundTrip(natsUrl: string): Promise<void> {
  const bus = await connectBus(natsUrl, 'temper-cli-smoke');
  const runId = `smoke-${process.pid}-${Date.now()}`;
  const consumer = `smoke_${process.pid}_${Date.now()}`;
  try {
    await bus.jsm.consumers.add(streams.rolloutRequests.name, {
      durable_name: consumer,
      ack_policy: AckPolicy.Explicit,
      filter_subject: subjects.rolloutRequest(runId),
    });
    const sent = RolloutRequest.fromPartial({ key: { runId, step: 1, groupIndex: 0 }, reference: '42' });
    const got = new Promise<RolloutRequest>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no JetStream delivery within 10 s')), 10000);
      void consumeMessages(bus.js, RolloutRequest, { stream: streams.rolloutRequests.name, consumer }, async (d) => {
        clearTimeout(timer);
        resolve(d.message);
      }).then((c) => got.finally(() => c.stop()));
    });
    await publishMessage(bus.js, subjects.rolloutRequest(runId), RolloutRequest, sent, { msgId: `${runId}/1/0` });
    const received = await got;
    if (received.reference !== '42' || received.key?.runId !== runId) throw new Error('JetStream returned a different message');
  } finally {
    await bus.jsm.consumers.delete(streams.rolloutRequests.name, consumer).catch(() => undefined);
    await bus.close();
  }
}
