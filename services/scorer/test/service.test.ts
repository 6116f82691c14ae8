// The scorer as its own process (dist/main.js) against the harness's nats-server:
// scoring through gRPC and through JetStream, errors, time limits and idempotent results.
import { AckPolicy } from '@nats-io/jetstream';
import * as grpc from '@grpc/grpc-js';
import { Bus, connectBus, consumeMessages, publishMessage, readParked, streams, subjects, freePort } from '@temper/bus';
import {
  FinishReason,
  ListRewardsResponse,
  RewardScorerClient,
  RewardSpec,
  RolloutGroup,
  ScoredGroup,
  ScoreRequest,
  ScoreResponse,
} from '@temper/proto';
import { waitForServing } from '@temper/service';
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { testNatsUrl } from '../../../test/harness/nats';

const runId = `scorer-test-${process.pid}`;
type ScoreRequestInput = Parameters<typeof ScoreRequest.fromPartial>[0];

interface Scorer {
  child: ChildProcess;
  address: string;
  stderr(): string;
  stop(): Promise<void>;
}

// A scorer process; all of this test's scorers share one consumer, on this test's run
// only (other tests use the same nats-server).
async function startScorer(env: Record<string, string> = {}): Promise<Scorer> {
  const address = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'main.js')], {
    env: {
      ...process.env,
      NATS_URL: testNatsUrl(),
      TEMPER_SCORER_ADDR: address,
      TEMPER_SCORER_THREADS: '2',
      TEMPER_SCORER_ITEM_TIMEOUT_MS: '1000',
      TEMPER_REWARD_PLUGINS: path.join(__dirname, 'fixtures', 'spin-plugin.js'),
      TEMPER_SCORER_CONSUMER: `scorer_test_${process.pid}`,
      TEMPER_SCORER_FILTER: subjects.rollout(runId),
      TEMPER_SCORER_CONSUMER_CHECK_MS: '300',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  await waitForServing(address, 'temper.v1.RewardScorer', 30000).catch((err) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${stderr}`);
  });
  return {
    child,
    address,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

describe('scorer service', () => {
  let scorer: Scorer;
  let client: InstanceType<typeof RewardScorerClient>;
  let bus: Bus;
  const stderr = () => scorer.stderr();

  beforeAll(async () => {
    scorer = await startScorer();
    client = new RewardScorerClient(scorer.address, grpc.credentials.createInsecure());
    bus = await connectBus(testNatsUrl(), 'scorer-test');
  });

  afterAll(async () => {
    client?.close();
    await bus?.close();
    await scorer?.stop();
  });

  const score = (req: ScoreRequestInput) =>
    new Promise<ScoreResponse>((resolve, reject) => client.score(ScoreRequest.fromPartial(req), (err, res) => (err ? reject(err) : resolve(res))));

  describe('over gRPC', () => {
    it('scores a batch with the default spec, in order', async () => {
      const res = await score({
        items: [
          { completion: '<think>6*7</think><answer>42</answer>', reference: '42' },
          { completion: '<think>hmm</think><answer>41</answer>', reference: '42' },
          { completion: '\\boxed{\\frac{1}{2}}', reference: '0.5' },
          { completion: 'no idea', reference: '7' },
        ],
      });
      expect(res.rewards.map((r) => r.components)).toEqual([
        { accuracy: 1, format: 1 },
        { accuracy: 0, format: 1 },
        { accuracy: 1, format: 0 },
        { accuracy: 0, format: 0 },
      ]);
      expect(res.rewards.map((r) => r.total)).toEqual([1.5, 0.5, 1, 0]);
      expect(res.rewards[2].extractedAnswer).toBe('\\frac{1}{2}');
      expect(res.rewards[3].flags).toEqual(['no_answer', 'bad_format']);
    });

    it('scores with the spec it is given, options included', async () => {
      const res = await score({
        spec: {
          components: [
            { name: 'accuracy', weight: 2, options: { relTolerance: 0.001 } },
            { name: 'length', weight: 1, options: { maxLength: 100 } },
            { name: 'overlong', weight: 1 },
          ],
        },
        items: [{ completion: '<answer>3.1416</answer>', reference: '\\pi', completionTokens: 50, maxTokens: 60 }],
      });
      const r = res.rewards[0];
      expect(r.components.accuracy).toBe(1);
      expect(r.components.length).toBeCloseTo(0.75);
      expect(r.components.overlong).toBeLessThan(0);
      expect(r.total).toBeCloseTo(2 + r.components.length + r.components.overlong);
    });

    it('answers INVALID_ARGUMENT naming the field', async () => {
      const cases: [ScoreRequestInput, string][] = [
        [{ spec: { components: [{ name: 'accuracy', weight: 1 }, { name: 'bogus', weight: 1 }] }, items: [] }, 'spec.components[1].name'],
        [{ spec: { components: [{ name: 'format', weight: 1, options: { partialCredit: 'lots' } }] }, items: [] }, 'spec.components[0].options.partialCredit'],
        [{ spec: { components: [{ name: 'accuracy', weight: 1, options: { pattern: '(' } }] }, items: [] }, 'spec.components[0].options.pattern'],
        [{ items: [{ completion: 'x', reference: '1' }, { completion: 'y', reference: '' }] }, 'items[1].reference'],
      ];
      for (const [req, field] of cases) {
        await expect(score(req)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining(field) });
      }
      // a format-only spec needs no reference
      const ok = await score({ spec: { components: [{ name: 'format', weight: 1 }] }, items: [{ completion: 'x', reference: '' }] });
      expect(ok.rewards).toHaveLength(1);
    });

    it('lists the components with their options, plugins included', async () => {
      const res = await new Promise<ListRewardsResponse>((resolve, reject) => client.listRewards({}, (err, r) => (err ? reject(err) : resolve(r))));
      const names = res.rewards.map((r) => r.name);
      expect(names).toEqual(expect.arrayContaining(['accuracy', 'format', 'length', 'overlong', 'repetition', 'language', 'spin']));
      const format = res.rewards.find((r) => r.name === 'format')!;
      expect(format.options).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'partialCredit', type: 'number', defaultValue: 0 })]));
      const acc = res.rewards.find((r) => r.name === 'accuracy')!;
      expect(acc.options.find((o) => o.name === 'sources')!.defaultValue).toEqual(['answer', 'boxed']);
    });

    it('gives a stuck item a flagged result within its time limit and keeps serving', async () => {
      const t0 = Date.now();
      const res = await score({
        spec: { components: [{ name: 'spin', weight: 1 }] },
        items: [{ completion: 'fine', reference: '' }, { completion: 'SPIN', reference: '' }, { completion: 'fine', reference: '' }],
      });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(res.rewards.map((r) => [r.total, r.flags])).toEqual([[1, []], [0, ['timeout']], [1, []]]);
      const after = await score({ items: [{ completion: '<think>a</think><answer>1</answer>', reference: '1' }] });
      expect(after.rewards[0].total).toBe(1.5);
    });
  });

  describe('with a plugin that allocates without bound', () => {
    // A scorer of its own: a small heap per thread and a time limit far off, so that only the
    // memory limit can end the item (running a heap out takes V8 about a second at 32 MiB).
    let hoarder: Scorer;
    let hoarderClient: InstanceType<typeof RewardScorerClient>;
    beforeAll(async () => {
      hoarder = await startScorer({
        TEMPER_REWARD_PLUGINS: path.join(__dirname, 'fixtures', 'hoard-plugin.js'),
        TEMPER_SCORER_THREAD_MEMORY_MB: '32',
        TEMPER_SCORER_ITEM_TIMEOUT_MS: '60000',
        TEMPER_SCORER_FILTER: subjects.rollout(`${runId}-hoard`),
        TEMPER_SCORER_CONSUMER: `scorer_hoard_${process.pid}`,
      });
      hoarderClient = new RewardScorerClient(hoarder.address, grpc.credentials.createInsecure());
    });
    afterAll(async () => {
      hoarderClient?.close();
      await hoarder?.stop();
      await bus.jsm.consumers.delete(streams.rollouts.name, `scorer_hoard_${process.pid}`).catch(() => undefined);
    });

    it('ends that item at the thread’s memory limit with the reason, stays up and scores the next request', async () => {
      const scoreThere = (req: ScoreRequestInput) =>
        new Promise<ScoreResponse>((resolve, reject) => hoarderClient.score(ScoreRequest.fromPartial(req), (err, res) => (err ? reject(err) : resolve(res))));
      const spec = { components: [{ name: 'hoard', weight: 1 }] };
      const res = await scoreThere({ spec, items: [{ completion: 'fine', reference: '' }, { completion: 'HOARD', reference: '' }, { completion: 'fine', reference: '' }] });
      expect(res.rewards.map((r) => [r.total, r.flags])).toEqual([[1, []], [0, ['out_of_memory']], [1, []]]);
      expect(hoarder.child.exitCode).toBeNull();
      expect(hoarder.stderr()).toContain('item ran its thread out of memory (limit 32 MiB)');
      const next = await scoreThere({ spec, items: [{ completion: 'fine again', reference: '' }] });
      expect(next.rewards.map((r) => r.total)).toEqual([1]);
    });
  });

  describe('over JetStream', () => {
    let scoredConsumer: string;
    let received: { group: ScoredGroup; headers: Record<string, string> }[];
    let stopConsuming: () => Promise<void>;

    beforeAll(async () => {
      scoredConsumer = `scorer_test_scored_${process.pid}`;
      await bus.jsm.consumers.add(streams.scored.name, {
        durable_name: scoredConsumer,
        ack_policy: AckPolicy.Explicit,
        filter_subject: subjects.scored(runId),
      });
      received = [];
      const c = await consumeMessages(bus.js, ScoredGroup, { stream: streams.scored.name, consumer: scoredConsumer }, async (d) => {
        received.push({ group: d.message, headers: d.headers });
      });
      stopConsuming = c.stop;
    });

    afterAll(async () => {
      await stopConsuming?.();
      await bus.jsm.consumers.delete(streams.scored.name, scoredConsumer).catch(() => undefined);
    });

    function group(step: number, groupIndex: number, policyVersion = 1): RolloutGroup {
      return RolloutGroup.fromPartial({
        key: { runId, step, groupIndex },
        prompt: { text: 'What is 6 * 7?' },
        reference: '42',
        policyVersion,
        completions: ['<think>6*7=42</think><answer>42</answer>', '<think>guess</think><answer>41</answer>', '42'].map((text) => ({
          text,
          tokenIds: [1, 2, 3],
          logprobs: [-0.5, -0.25, -1.5],
          finishReason: FinishReason.FINISH_REASON_STOP,
        })),
      });
    }

    async function waitFor<T>(what: () => T | undefined, ms = 15000): Promise<T> {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = what();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting\n${stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    it('consumes a rollout group and publishes its scores for the learner', async () => {
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(1, 0), { msgId: `${runId}/1/0`, headers: { traceparent } });
      const got = await waitFor(() => received.find((r) => r.group.group?.key?.step === 1));
      expect(got.group.group).toEqual(group(1, 0));
      expect(got.group.rewards.map((r) => r.components)).toEqual([
        { accuracy: 1, format: 1 },
        { accuracy: 0, format: 1 },
        { accuracy: 0, format: 0 },
      ]);
      expect(got.group.rewards[2].flags).toContain('no_answer');
      expect(got.group.scoreSeconds).toBeGreaterThan(0);
      // the same trace, continued from the scorer's span
      expect(got.headers.traceparent.split('-')[1]).toBe(traceparent.split('-')[1]);
      expect(got.headers.traceparent.split('-')[2]).not.toBe(traceparent.split('-')[2]);
    });

    it('uses the reward spec the group carries', async () => {
      const g = group(2, 0);
      g.reward = RewardSpec.fromPartial({ components: [{ name: 'accuracy', weight: 3 }] });
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, g);
      const got = await waitFor(() => received.find((r) => r.group.group?.key?.step === 2));
      expect(got.group.rewards.map((r) => r.total)).toEqual([3, 0, 0]);
    });

    it('publishes one result for a rollout group delivered twice', async () => {
      // The same group twice in the rollouts stream (a generator retried with a new
      // message id, or a scorer died before its ack): the scores are stored once.
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(3, 7, 5), { msgId: 'first' });
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(3, 7, 5), { msgId: 'second' });
      // and a newer policy's sample of the same group is a different result
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(3, 7, 6), { msgId: 'third' });
      const consumer = `scorer_test_${process.pid}`;
      const deadline = Date.now() + 15000;
      for (;;) {
        const info = await bus.jsm.consumers.info(streams.rollouts.name, consumer);
        if (info.num_pending === 0 && info.num_ack_pending === 0) break;
        if (Date.now() > deadline) throw new Error(`rollouts not all scored\n${stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitFor(() => (received.filter((r) => r.group.group?.key?.step === 3).length >= 2 ? true : undefined));
      await new Promise((r) => setTimeout(r, 300)); // anything more would arrive by now
      const step3 = received.filter((r) => r.group.group?.key?.step === 3);
      expect(step3.map((r) => r.group.group!.policyVersion).sort()).toEqual([5, 6]);
    });

    it('puts its consumer back when it disappears, and goes on consuming', async () => {
      await bus.jsm.consumers.delete(streams.rollouts.name, `scorer_test_${process.pid}`);
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(6, 0));
      const got = await waitFor(() => received.find((r) => r.group.group?.key?.step === 6));
      expect(got.group.rewards).toHaveLength(3);
    });

    it('shares the work with another scorer on the same consumer, each group scored once', async () => {
      const second = await startScorer();
      try {
        await waitFor(() => (second.stderr().includes('consuming rollout groups') ? true : undefined));
        for (let i = 0; i < 30; i++) await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(100 + i, 0));
        await waitFor(() => (new Set(received.map((r) => r.group.group?.key?.step).filter((s) => s! >= 100)).size === 30 ? true : undefined));
        await new Promise((r) => setTimeout(r, 300));
        const steps = received.map((r) => r.group.group!.key!.step).filter((s) => s >= 100);
        expect(steps.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => 100 + i));
      } finally {
        await second.stop();
      }
      // the first scorer still consumes after the second left
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(200, 0));
      await waitFor(() => received.find((r) => r.group.group?.key?.step === 200));
    });

    it('parks a malformed group on the dead-letter subject with its reason and goes on with the next', async () => {
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, RolloutGroup.fromPartial({ reference: '1', completions: [{ text: 'x' }] }));
      const bad = group(4, 0);
      bad.reward = RewardSpec.fromPartial({ components: [{ name: 'bogus', weight: 1 }] });
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, bad);
      await publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group(5, 0));
      await waitFor(() => received.find((r) => r.group.group?.key?.step === 5));
      expect(received.find((r) => r.group.group?.key?.step === 4)).toBeUndefined();
      expect(stderr()).toContain('parking an invalid rollout group');
      expect(stderr()).toContain('spec.components[0].name');
      const parked = await readParked(bus.js, streams.rollouts.name, `scorer_test_${process.pid}`, 2);
      expect(parked.map((p) => p.reason)).toEqual(['invalid rollout group: key: required', expect.stringMatching(/^invalid reward spec: .*spec\.components\[0\]\.name/)]);
      expect(RolloutGroup.decode(parked[1].data).key?.step).toBe(4);
    });
  });
});
