// The JetStream worker end to end on a real nats-server and a real checkpoint store: rollout
// requests in, rollout groups out (shapes, engine log-probs, fields copied through,
// idempotent message ids), groups from many requests batched, the trace continued from the
// publisher, policy versions followed (fetched when a request needs one, loaded ahead when
// announced, swapped between batches without losing a request), requests for versions not
// announced yet retried, and malformed requests terminated.
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { Bus, publishMessage, readParked, streams, subjects } from '@temper/bus';
import { Model } from '@temper/native';
import { CheckpointCommitted, FinishReason, RolloutGroup, RolloutRequest } from '@temper/proto';
import { groupSeed } from '../src/batcher';
import { PolicyManager } from '../src/policy';
import { RolloutWorker } from '../src/worker';
import { maxAbsDiff, pushTinyPolicy, recordingLogger, rolloutReader, Stack, startStack, teacherForcedLogprobs, tokenizer, waitFor } from './helpers';

const RUN = 'run-worker';

function request(step: number, groupIndex: number, over: Partial<RolloutRequest> = {}): RolloutRequest {
  return RolloutRequest.fromPartial({
    key: { runId: RUN, step, groupIndex, attempt: 0 },
    prompt: { text: `Q: ${step}+${groupIndex}?\nA: `, tokenIds: [] },
    reference: `${step + groupIndex}`,
    sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 10, seed: 1, n: 4 },
    minPolicyVersion: 1,
    reward: { components: [{ name: 'accuracy', weight: 1, options: { tolerance: 0.01 } }] },
    ...over,
  });
}

async function publishRequest(bus: Bus, r: RolloutRequest, msgId?: string): Promise<void> {
  const k = r.key!;
  await publishMessage(bus.js, subjects.rolloutRequest(k.runId), RolloutRequest, r, { msgId: msgId ?? `${k.runId}/${k.step}/${k.groupIndex}/${k.attempt}` });
}

/** Checks a group's completions against the engine's teacher-forced log-probs of `model`. */
async function expectEngineLogprobs(group: RolloutGroup, model: Model): Promise<void> {
  for (const c of group.completions) {
    expect(c.logprobs).toHaveLength(c.tokenIds.length);
    const ref = await teacherForcedLogprobs(model, group.prompt!.tokenIds, c.tokenIds);
    expect(maxAbsDiff(c.logprobs, ref)).toBeLessThan(1e-4);
  }
}

describe('rollout worker', () => {
  let stack: Stack;
  let policy: PolicyManager;
  let worker: RolloutWorker;
  let reader: Awaited<ReturnType<typeof rolloutReader>>;
  const models = new Map<number, Model>();
  const batches: { size: number; version: number }[] = [];
  const logs = recordingLogger();
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(async () => {
    provider.register();
    stack = await startStack();
    reader = await rolloutReader(stack.bus, RUN);
    models.set(1, (await pushTinyPolicy(stack, { runId: RUN, version: 1, seed: 21 })).model);
    policy = stack.policyManager(await stack.connect('generator-under-test'));
    worker = new RolloutWorker({
      bus: await stack.connect('worker-under-test'),
      policy,
      log: logs.log,
      tracer: trace.getTracer('temper.generator'),
      generatorId: 'gen-a',
      ackWaitMs: 5000,
      lingerMs: 50,
      retryDelayMs: 200,
      onBatch: (groups, p) => batches.push({ size: groups.length, version: p.version }),
    });
  }, 60000);

  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
    await provider.shutdown();
  });

  it('samples requests into rollout groups, batched, with the publisher trace continued', async () => {
    // The learner's step span, as the learner would hold it while publishing.
    const learner = trace.getTracer('temper.learner');
    const stepSpan = learner.startSpan('learner.step');
    await context.with(trace.setSpan(context.active(), stepSpan), async () => {
      for (let g = 0; g < 3; g++) await publishRequest(stack.bus, request(0, g));
    });
    stepSpan.end();
    await worker.start();
    const got = (await reader.take(3)).sort((a, b) => a.group.key!.groupIndex - b.group.key!.groupIndex);

    expect(batches[0]).toEqual({ size: 3, version: 1 });
    for (const [g, r] of got.entries()) {
      const want = request(0, g);
      expect(r.msgId).toBe(`${RUN}/0/${g}/v1`);
      expect(r.group.key).toEqual(want.key);
      expect(r.group.reference).toBe(want.reference);
      expect(r.group.reward).toEqual(want.reward);
      expect(r.group.policyVersion).toBe(1);
      expect(r.group.generatorId).toBe('gen-a');
      expect(r.group.generateSeconds).toBeGreaterThan(0);
      expect(r.group.prompt).toEqual({ text: want.prompt!.text, tokenIds: Array.from(tokenizer.encode(want.prompt!.text)) });
      expect(r.group.completions).toHaveLength(4);
      for (const c of r.group.completions) {
        expect(c.tokenIds.length).toBeGreaterThan(0);
        expect(c.tokenIds.length).toBeLessThanOrEqual(10);
        expect(c.text).toBe(tokenizer.decode(c.tokenIds, { skipSpecialTokens: true }));
        expect([FinishReason.FINISH_REASON_STOP, FinishReason.FINISH_REASON_LENGTH]).toContain(c.finishReason);
      }
      await expectEngineLogprobs(r.group, models.get(1)!);
      // The rollout carries the trace on to the scorers: same trace as the learner's step.
      expect(r.traceparent?.split('-')[1]).toBe(stepSpan.spanContext().traceId);
    }
    // Groups of one batch are not copies of each other.
    expect(new Set(got.map((r) => r.group.completions[0].tokenIds.join(','))).size).toBe(3);
    // Structured logs name run, step, group and the trace.
    const published = logs.entries.filter((e) => e.msg === 'rollout group published');
    expect(published).toHaveLength(3);
    for (const e of published) expect(e).toMatchObject({ run: RUN, step: 0, policy_version: 1, samples: 4, trace_id: stepSpan.spanContext().traceId });

    // One generator span per group, each a child of the learner's step span.
    const spans = exporter.getFinishedSpans().filter((s) => s.name === 'generator.generate');
    expect(spans).toHaveLength(3);
    for (const s of spans) {
      expect(s.spanContext().traceId).toBe(stepSpan.spanContext().traceId);
      expect(s.parentSpanContext?.spanId).toBe(stepSpan.spanContext().spanId);
      expect(s.attributes['temper.run_id']).toBe(RUN);
      expect(s.attributes['temper.batch_groups']).toBe(3);
    }
  }, 60000);

  it('stores a group published twice once (idempotent message id)', async () => {
    const stats = { ...worker.stats };
    // The same group delivered again (e.g. redelivered after the ack was lost).
    await publishRequest(stack.bus, request(0, 1), 'redelivered-copy-of-0-1');
    await waitFor('the second copy to be handled', () => worker.stats.duplicates > stats.duplicates || undefined);
    expect(worker.stats.groupsPublished).toBe(stats.groupsPublished);
    expect(await reader.next(1000)).toBeUndefined();
    const info = await stack.bus.jsm.streams.info(streams.rolloutRequests.name);
    expect(info.state.messages).toBe(0); // acked, so gone from the work queue
  }, 30000);

  it('fetches the version a request needs, and loads announced versions ahead of need', async () => {
    // A request for version 2 before anyone announced it waits (retried), then is served by 2.
    await publishRequest(stack.bus, request(1, 0, { minPolicyVersion: 2 }));
    await new Promise((r) => setTimeout(r, 500));
    expect(policy.current?.version).toBe(1);
    models.set(2, (await pushTinyPolicy(stack, { runId: RUN, version: 2, seed: 22 })).model);
    const [a] = await reader.take(1);
    expect(a.group.policyVersion).toBe(2);
    expect(a.msgId).toBe(`${RUN}/1/0/v2`);
    await expectEngineLogprobs(a.group, models.get(2)!);

    // Version 3 announced while 2 is served: loaded ahead, swapped in at the next batch.
    models.set(3, (await pushTinyPolicy(stack, { runId: RUN, version: 3, seed: 23 })).model);
    await waitFor('version 3 loaded ahead', () => policy.loadedAhead?.version === 3 || undefined);
    expect(policy.current?.version).toBe(2);
    await publishRequest(stack.bus, request(2, 0, { minPolicyVersion: 2 }));
    const [b] = await reader.take(1);
    expect(b.group.policyVersion).toBe(3);
    await expectEngineLogprobs(b.group, models.get(3)!);
    expect(policy.current?.version).toBe(3);
  }, 60000);

  it('loses no request when a new version arrives while requests are in flight', async () => {
    const before = batches.length;
    const requests = Array.from({ length: 6 }, (_, g) => request(3, g, { minPolicyVersion: 3 }));
    const publishing = (async () => {
      for (const r of requests) {
        await publishRequest(stack.bus, r);
        await new Promise((res) => setTimeout(res, 15));
      }
    })();
    models.set(4, (await pushTinyPolicy(stack, { runId: RUN, version: 4, seed: 24 })).model);
    await publishing;
    const got = await reader.take(6);
    expect(got.map((r) => r.group.key!.groupIndex).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of got) {
      expect([3, 4]).toContain(r.group.policyVersion);
      // Each group's log-probs are those of the version it says produced it: no batch mixed two.
      await expectEngineLogprobs(r.group, models.get(r.group.policyVersion)!);
    }
    for (const b of batches.slice(before)) expect([3, 4]).toContain(b.version);
    expect(await reader.next(1000)).toBeUndefined();
  }, 60000);

  it('finds the newest policy version when the run\'s last checkpoint is not a policy', async () => {
    const newest = (await policy.latestAnnounced(RUN))!.version;
    expect(newest).toBeGreaterThanOrEqual(4);
    // A checkpoint saved only to resume from: announced with no policy version.
    await pushTinyPolicy(stack, { runId: RUN, version: 0, seed: 99 });
    const last = await stack.bus.jsm.streams.getMessage(streams.events.name, { last_by_subj: subjects.checkpointCommitted(RUN) });
    expect(CheckpointCommitted.decode(last!.data).policyVersion).toBe(0);
    const found = await policy.latestAnnounced(RUN);
    expect(found?.version).toBe(newest);
    expect(found?.manifest.step).toBe(newest);
    expect(await policy.latestAnnounced('run-that-never-was')).toBeUndefined();
  }, 30000);

  it('batches groups with different lengths and stop strings, each cut to its own limits', async () => {
    const before = batches.length;
    const short = request(4, 0, { minPolicyVersion: 1, sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 3, seed: 2, n: 4, stopTokenIds: [], stopStrings: [] } });
    const long = request(4, 1, { minPolicyVersion: 1, sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 16, seed: 2, n: 4, stopTokenIds: [], stopStrings: ['e'] } });
    // Both requests queued before a worker that waits long enough for a full batch looks.
    await worker.stop();
    await publishRequest(stack.bus, short);
    await publishRequest(stack.bus, long);
    const patient = new RolloutWorker({
      bus: await stack.connect('patient-worker'),
      policy,
      log: logs.log,
      tracer: trace.getTracer('temper.generator'),
      generatorId: 'gen-patient',
      ackWaitMs: 5000,
      lingerMs: 10_000, // returns as soon as both are held; long enough for a loaded machine
      maxBatchGroups: 2,
      onBatch: (groups, p) => batches.push({ size: groups.length, version: p.version }),
    });
    await patient.start();
    const got = (await reader.take(2)).sort((a, b) => a.group.key!.groupIndex - b.group.key!.groupIndex);
    await patient.stop();
    await worker.start();
    // (A version loaded ahead during the last test may have gone in at this batch.)
    const served = policy.current!;
    expect(batches.slice(before)).toEqual([{ size: 2, version: served.version }]);
    expect(got.map((r) => r.group.policyVersion)).toEqual([served.version, served.version]);
    for (const c of got[0].group.completions) expect(c.tokenIds.length).toBeLessThanOrEqual(3);
    for (const c of got[1].group.completions) {
      expect(c.tokenIds.length).toBeLessThanOrEqual(16);
      // Ends at the first "e" when there is one, and has none before it.
      const at = c.text.indexOf('e');
      if (c.finishReason === FinishReason.FINISH_REASON_STOP && at >= 0) expect(at).toBe(c.text.length - 1);
      if (c.finishReason === FinishReason.FINISH_REASON_LENGTH) expect(c.text.includes('e')).toBe(false);
    }
    for (const r of got) await expectEngineLogprobs(r.group, models.get(served.version)!);
    // The group that led the batch got exactly what it would have got alone (its own seed).
    const alone = await served.model.generate({
      prompts: [tokenizer.encode(short.prompt!.text)],
      maxNewTokens: 3,
      temperature: 1,
      stopTokens: [tokenizer.specialTokens.eos!],
      seed: groupSeed(short.key, 2),
      n: 4,
    });
    expect(got[0].group.completions.map((c) => c.tokenIds)).toEqual(alone.map((c) => Array.from(c.tokens)));
  }, 30000);

  it('parks a request that can never be sampled on the dead-letter subject, naming the field', async () => {
    const rejected = worker.stats.rejected;
    await publishRequest(stack.bus, request(9, 0, { sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 0, seed: 0, n: 2, stopTokenIds: [], stopStrings: [] }, minPolicyVersion: 1 }));
    // A request without a run id, on the run's subject.
    await publishMessage(stack.bus.js, subjects.rolloutRequest(RUN), RolloutRequest, request(9, 1, { key: { runId: '', step: 9, groupIndex: 1, attempt: 0 } }), { msgId: 'keyless' });
    await waitFor('the requests to be rejected', () => worker.stats.rejected >= rejected + 2 || undefined);
    expect(await reader.next(1000)).toBeUndefined();
    // Terminated, not retried: no redelivery however long we wait, nothing left pending.
    expect(worker.stats.rejected).toBe(rejected + 2);
    const entries = logs.entries.filter((e) => e.msg === 'rollout request rejected; parked on the dead-letter subject');
    expect(entries).toEqual([
      expect.objectContaining({ level: 'error', run: RUN, step: 9, group: 0, reason: expect.stringMatching(/^sampling\.max_new_tokens /) }),
      expect.objectContaining({ level: 'error', step: 9, group: 1, reason: 'key.run_id is required' }),
    ]);
    const c = await stack.bus.jsm.consumers.info(streams.rolloutRequests.name, 'generators');
    expect(c.num_ack_pending).toBe(0);
    expect(c.num_pending).toBe(0);
    const parked = await readParked(stack.bus.js, streams.rolloutRequests.name, 'generators', 2);
    expect(parked.map((p) => p.reason)).toEqual([expect.stringMatching(/^rejected: sampling\.max_new_tokens /), 'rejected: key.run_id is required']);
  }, 30000);

  it('holds a request for a version still to come without holding up others, and samples it when that version comes', async () => {
    const v = policy.current!.version;
    const retried = () => logs.entries.filter((e) => e.msg.startsWith('the policy version this request needs is not available yet') && e.step === 10);
    await publishRequest(stack.bus, request(10, 0, { minPolicyVersion: v + 1 }));
    await waitFor('the request to be held', async () => (await stack.bus.jsm.consumers.info(streams.rolloutRequests.name, 'generators')).num_ack_pending === 1 || undefined);
    await publishRequest(stack.bus, request(10, 1, { minPolicyVersion: v }));
    const [now] = await reader.take(1);
    expect(now.group.key!.groupIndex).toBe(1);
    expect(now.group.policyVersion).toBe(v);
    // Longer than sending it back to the queue and getting it again would take.
    expect(await reader.next(2500)).toBeUndefined();
    models.set(v + 1, (await pushTinyPolicy(stack, { runId: RUN, version: v + 1, seed: 30 })).model);
    const [later] = await reader.take(1);
    expect(later.group.key!.groupIndex).toBe(0);
    expect(later.group.policyVersion).toBe(v + 1);
    await expectEngineLogprobs(later.group, models.get(v + 1)!);
    // Held all along: delivered once, never sent back.
    expect(logs.entries.find((e) => e.msg === 'rollout group published' && e.step === 10 && e.group === 0)).toMatchObject({ delivery: 1 });
    expect(retried()).toEqual([]);
  }, 30000);

  it('sends a request back to the queue once it has waited its time for a version', async () => {
    await worker.stop();
    const brief = new RolloutWorker({ bus: await stack.connect('brief-worker'), policy, log: logs.log, tracer: trace.getTracer('temper.generator'), generatorId: 'gen-brief', ackWaitMs: 5000, retryDelayMs: 200, aheadWaitMs: 300 });
    await brief.start();
    try {
      await publishRequest(stack.bus, request(11, 0, { minPolicyVersion: policy.current!.version + 5 }));
      const entry = await waitFor('the request to go back', () => logs.entries.find((e) => e.msg.startsWith('the policy version this request needs is not available yet') && e.step === 11));
      expect(entry).toMatchObject({ run: RUN, group: 0, min_policy_version: policy.current!.version + 5 });
    } finally {
      // Nobody will make that version: take the request back, as a learner that stops does.
      await stack.bus.jsm.streams.purge(streams.rolloutRequests.name, { filter: subjects.rolloutRequest(RUN) });
      await brief.stop();
    }
  }, 30000);
});
