// temper up [--smoke]: start the local stack and keep it up until Ctrl-C; with --smoke,
// check every service's health and a JetStream round trip, print the result, and stop.
import { connectBus, publishMessage, streams, subjects } from '@temper/bus';
import { RunEvent } from '@temper/proto';
import { checkHealth } from '@temper/service';
import { startLocalStack, LocalStack } from '../local-stack';

export async function up(args: { smoke: boolean; json: boolean }): Promise<number> {
  const stack = await startLocalStack({ logs: args.smoke ? 'ignore' : 'inherit' });
  if (!args.smoke) {
    for (const s of stack.services) process.stdout.write(`${s.name.padEnd(18)} ${s.address}\n`);
    process.stdout.write(`nats               ${stack.natsUrl}\n`);
    // Other terminals reach this stack with these settings (plaintext on loopback, its control token).
    const plaintext = stack.clientAuth.security.kind === 'plaintext-loopback' ? 'TEMPER_PLAINTEXT=loopback ' : '';
    process.stdout.write(`clients            export ${plaintext}TEMPER_AUTH_TOKEN=${stack.clientAuth.token}\nTemper is up; Ctrl-C stops it.\n`);
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
      status: await checkHealth(s.address, '', 2000, stack.clientAuth.security).catch((e: Error) => `error: ${e.message}`),
    })),
  );
  const t0 = performance.now();
  await jetstreamRoundTrip(stack.natsUrl);
  const rtt = performance.now() - t0;
  return { ok: services.every((s) => s.status === 'SERVING'), services, jetstreamRoundTripMs: rtt };
}

// A message published and read back through JetStream, on a run subject of the events
// stream (limits retention: reading it takes nothing from the services' work queues).
async function jetstreamRoundTrip(natsUrl: string): Promise<void> {
  const bus = await connectBus(natsUrl, 'temper-cli-smoke');
  const runId = `smoke-${process.pid}-${Date.now()}`;
  try {
    const sent = RunEvent.fromPartial({ runId, event: { $case: 'log', value: 'smoke' } });
    await publishMessage(bus.js, subjects.runLog(runId), RunEvent, sent, { msgId: runId });
    const consumer = await bus.js.consumers.get(streams.events.name, { filter_subjects: subjects.runLog(runId) });
    const msg = await consumer.next({ expires: 10000 });
    if (!msg) throw new Error('no JetStream delivery within 10 s');
    const got = RunEvent.decode(msg.data);
    if (got.runId !== runId || got.event?.$case !== 'log' || got.event.value !== 'smoke') throw new Error('JetStream returned a different message');
  } finally {
    await bus.close();
  }
}
