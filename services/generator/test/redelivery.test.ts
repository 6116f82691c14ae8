// A generator that dies mid-batch loses no prompt group: its requests were never acked, so
// after ack_wait JetStream hands them to another generator on the shared consumer, which
// samples and publishes them; nothing is published twice.
import { AckPolicy } from '@nats-io/jetstream';
import { trace } from '@opentelemetry/api';
import { publishMessage, streams, subjects } from '@temper/bus';
import { RolloutGroup, RolloutRequest } from '@temper/proto';
import { RolloutWorker } from '../src/worker';
import { pushTinyPolicy, recordingLogger, Stack, startStack, waitFor } from './helpers';

const RUN = 'run-redelivery';
const ACK_WAIT_MS = 1500;

describe('a generator killed mid-batch', () => {
  let stack: Stack;
  const workers: RolloutWorker[] = [];

  beforeAll(async () => {
    stack = await startStack();
    await pushTinyPolicy(stack, { runId: RUN, version: 1, seed: 31 });
  }, 60000);

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await stack?.stop();
  });

  async function startWorker(id: string, onBatch?: (w: RolloutWorker) => void) {
    const logs = recordingLogger();
    const bus = await stack.connect(id);
    const worker: RolloutWorker = new RolloutWorker({
      bus,
      policy: stack.policyManager(bus),
      log: logs.log,
      tracer: trace.getTracer('test'),
      generatorId: id,
      ackWaitMs: ACK_WAIT_MS,
      lingerMs: 50,
      onBatch: () => onBatch?.(worker),
    });
    workers.push(worker);
    await worker.start();
    return { worker, logs };
  }

  it('has its unacked requests sampled by another generator after ack_wait', async () => {
    await stack.bus.jsm.consumers.add(streams.rollouts.name, { durable_name: 'test_reader', ack_policy: AckPolicy.Explicit, filter_subject: subjects.rollout(RUN) });
    const reader = await stack.bus.js.consumers.get(streams.rollouts.name, 'test_reader');

    for (let g = 0; g < 2; g++) {
      const r = RolloutRequest.fromPartial({
        key: { runId: RUN, step: 0, groupIndex: g },
        prompt: { text: `prompt ${g}` },
        reference: String(g),
        sampling: { temperature: 1, maxNewTokens: 8, n: 3, seed: 5 },
        minPolicyVersion: 1,
      });
      await publishMessage(stack.bus.js, subjects.rolloutRequest(RUN), RolloutRequest, r, { msgId: `${RUN}/0/${g}/0` });
    }

    // Generator A takes both requests and dies as soon as it starts sampling them.
    let died = 0;
    const aStarted = Date.now(); // nothing can be delivered to A before this
    const a = await startWorker('gen-a', (w) => {
      died = Date.now();
      w.abandon();
    });
    await waitFor('generator A to start its batch', () => died || undefined);
    const b = await startWorker('gen-b');

    const got: RolloutGroup[] = [];
    while (got.length < 2) {
      const m = await reader.next({ expires: 10000 });
      if (!m) throw new Error(`only ${got.length} of 2 groups arrived`);
      m.ack();
      got.push(RolloutGroup.decode(m.data));
    }
    // Not before ack_wait ran out on A's delivery.
    expect(Date.now() - aStarted).toBeGreaterThanOrEqual(ACK_WAIT_MS);
    expect(got.map((g) => g.key!.groupIndex).sort()).toEqual([0, 1]);
    for (const g of got) {
      expect(g.generatorId).toBe('gen-b');
      expect(g.completions).toHaveLength(3);
      expect(g.policyVersion).toBe(1);
    }
    expect(a.worker.stats.groupsPublished).toBe(0);
    expect(b.worker.stats.groupsPublished).toBe(2);
    // B saw them as redeliveries.
    const published = b.logs.entries.filter((e) => e.msg === 'rollout group published');
    expect(published.map((e) => e.delivery)).toEqual([2, 2]);
    // Nothing else arrives, and the work queue is empty.
    expect(await reader.next({ expires: 1500 })).toBeNull();
    expect((await stack.bus.jsm.streams.info(streams.rolloutRequests.name)).state.messages).toBe(0);
  }, 60000);
});
