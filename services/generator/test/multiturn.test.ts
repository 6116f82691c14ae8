// Multi-turn rollouts through the generator's JetStream worker, a real nats-server, a real
// checkpoint store and the real engine: a tiny model taught one conversation (a calculator
// call, then the answer) plays it with the countdown environment, and its completion carries
// the model's tokens with their log-probs and the observation tokens masked out, checked
// token by token. Environments that throw or hang end their own conversation with the reason
// while the rest of the batch goes on sampling.
import { trace } from '@opentelemetry/api';
import { publishMessage, subjects } from '@temper/bus';
import type { Environment, EnvironmentFactory } from '@temper/environments';
import { Model } from '@temper/native';
import { FinishReason, RolloutGroup, RolloutRequest } from '@temper/proto';
import { TOKENIZER_SPEC_FILE } from '@temper/tokenizers';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { PolicyManager } from '../src/policy';
import { RolloutWorker } from '../src/worker';
import { maxAbsDiff, recordingLogger, rolloutReader, Stack, startStack, teacherForcedLogprobs, tinyConfig, tokenizer } from './helpers';

const RUN = 'run-multiturn';
const eos = tokenizer.specialTokens.eos!;

// The conversation the tiny model is taught, as the byte template renders it.
const task = { prompt: 'Using 2, 3 once each, make 5.', reference: '2+3' };
const opening = tokenizer.encode(`Q: ${task.prompt}\nA: `);
const turn1 = [...tokenizer.encode('<tool>calculator: 2+3</tool>'), eos];
const observation = tokenizer.encode('\nT: 5\nA: ');
const turn2 = [...tokenizer.encode('<answer>2+3</answer>'), eos];

/** Cross-entropy on the assistant's tokens of the scripted conversation until greedy decoding reproduces it. */
async function teach(model: Model): Promise<void> {
  const seq = Int32Array.from([...opening, ...turn1, ...observation, ...turn2]);
  const T = seq.length - 1;
  const d = new Float32Array(T);
  const own = [...opening.map(() => 0), ...turn1.map(() => 1), ...observation.map(() => 0), ...turn2.map(() => 1)];
  for (let t = 0; t < T; t++) if (own[t + 1]) d[t] = -1;
  for (let step = 0; step < 600; step++) {
    await model.zeroGrad();
    const { logprobs } = await model.logprobs(seq, { batch: 1, seqLen: seq.length, lengths: Int32Array.of(seq.length) });
    let worst = 0;
    for (let t = 0; t < T; t++) if (d[t]) worst = Math.min(worst, logprobs[t]);
    if (worst > Math.log(0.9)) return;
    await model.backward(d);
    await model.step({ lr: 1e-2, weightDecay: 0 });
  }
  throw new Error('the tiny model did not learn the scripted conversation');
}

/** Test environments served beside the built-ins, as an embedding would add its own. */
const slowStarted: number[] = [];
const clockSteps: number[] = [];
const extra: Record<string, EnvironmentFactory> = {
  test_throws: {
    description: 'throws on its first step',
    prepare: () => () => env({ step: () => Promise.reject(new Error('the test environment broke')) }),
  },
  test_hangs: {
    description: 'never answers a step',
    prepare: () => () =>
      env({
        step: () => {
          slowStarted.push(Date.now());
          return new Promise(() => undefined);
        },
      }),
  },
  test_clock: {
    description: 'answers every turn at once, noting when',
    prepare: () => () =>
      env({
        step: async () => {
          clockSteps.push(Date.now());
          return { observations: [{ role: 'user', content: 'again' }], done: false };
        },
      }),
  },
};

function env(o: Pick<Environment, 'step'>): Environment {
  return { reset: (t) => [{ role: 'user', content: t.prompt }], tools: () => [], ...o };
}

function request(groupIndex: number, environment: RolloutRequest['environment'], over: Partial<RolloutRequest> = {}): RolloutRequest {
  return RolloutRequest.fromPartial({
    key: { runId: RUN, step: 0, groupIndex, attempt: 0 },
    prompt: { text: task.prompt },
    reference: task.reference,
    sampling: { temperature: 0, topP: 1, topK: 0, maxNewTokens: 40, seed: 3, n: 2 },
    minPolicyVersion: 1,
    environment,
    ...over,
  });
}

async function publish(stack: Stack, r: RolloutRequest): Promise<void> {
  const k = r.key!;
  await publishMessage(stack.bus.js, subjects.rolloutRequest(k.runId), RolloutRequest, r, { msgId: `${k.runId}/${k.step}/${k.groupIndex}` });
}

describe('multi-turn rollouts', () => {
  let stack: Stack;
  let policy: PolicyManager;
  let worker: RolloutWorker;
  let model: Model;
  let reader: Awaited<ReturnType<typeof rolloutReader>>;
  const logs = recordingLogger();

  beforeAll(async () => {
    stack = await startStack();
    reader = await rolloutReader(stack.bus, RUN);
    model = await Model.create(tinyConfig, { seed: 5, threads: 1 });
    await teach(model);
    const dir = path.join(stack.root, 'taught');
    await model.save(dir);
    await fsp.writeFile(path.join(dir, TOKENIZER_SPEC_FILE), JSON.stringify({ kind: 'byte' }));
    await stack.client.pushDir(dir, { runId: RUN, stage: 'grpo', step: 1, branch: 'main' }, { policyVersion: 1 });
    policy = stack.policyManager(await stack.connect('multiturn-policy'));
    await startWorker();
  }, 120000);

  const batches: number[][] = [];
  async function startWorker(): Promise<void> {
    worker = new RolloutWorker({
      bus: await stack.connect(`multiturn-worker-${batches.length}`),
      policy,
      log: logs.log,
      tracer: trace.getTracer('temper.generator'),
      generatorId: 'gen-mt',
      ackWaitMs: 5000,
      // Long enough for requests already queued to arrive together on a loaded machine; a batch
      // with nothing more pending is sampled at once all the same.
      lingerMs: 2000,
      retryDelayMs: 200,
      environments: extra,
      onBatch: (groups) => batches.push(groups.map((g) => g.key!.groupIndex)),
    });
    await worker.start();
  }

  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  it('plays countdown with a calculator call; the loss mask excludes every observation token', async () => {
    await publish(stack, request(0, { name: 'countdown', tools: ['calculator'], maxTurns: 4, options: {} } as never));
    const [{ group }] = await reader.take(1, 60000);
    expect(group.prompt!.tokenIds).toEqual(Array.from(opening));
    expect(group.completions).toHaveLength(2);
    for (const c of group.completions) {
      expect(c.tokenIds).toEqual([...turn1, ...observation, ...turn2]);
      // Token by token: the model's two turns are 1, the calculator's answer and the template's text around it 0.
      const want = [...turn1.map(() => 1), ...Array.from(observation, () => 0), ...turn2.map(() => 1)];
      expect(c.lossMask).toEqual(want);
      c.lossMask.forEach((m, i) => {
        if (!m) expect(c.logprobs[i]).toBe(0);
      });
      // The model's tokens carry the engine's log-probs in the context they were sampled in.
      const ref = await teacherForcedLogprobs(model, group.prompt!.tokenIds, c.tokenIds);
      const own = (xs: ArrayLike<number>) => Array.from(xs).filter((_, i) => c.lossMask[i]);
      expect(maxAbsDiff(own(c.logprobs), own(ref))).toBeLessThan(1e-4);
      expect(c).toMatchObject({ turns: 2, toolCalls: 1, toolCallsFailed: 0, endReason: 'done', environmentRewards: { solved: 1 }, finishReason: FinishReason.FINISH_REASON_STOP });
      expect(c.text).toBe('<tool>calculator: 2+3</tool>\nT: 5\nA: <answer>2+3</answer>');
    }
  }, 90000);

  it('ends a conversation whose environment throws or hangs with the reason; the rest of the batch goes on', async () => {
    const timeoutMs = 1500;
    const sampling = { temperature: 1, topP: 1, topK: 0, maxNewTokens: 6, seed: 3, n: 2, stopTokenIds: [], stopStrings: [] };
    const groups = [
      request(10, { name: 'test_throws' } as never, { sampling }),
      request(11, { name: 'test_hangs', stepTimeoutMs: timeoutMs } as never, { sampling }),
      request(12, { name: 'test_clock', maxTurns: 4, maxTokens: 200 } as never, { sampling }),
      request(13, { name: 'guess_number', maxTurns: 3, options: { low: 1, high: 9 } } as never, { sampling, reference: '7' }),
    ];
    // Queued while no worker runs, so that they are sampled as one batch.
    await worker.stop();
    for (const g of groups) await publish(stack, g);
    await startWorker();
    const got = new Map<number, RolloutGroup>((await reader.take(4, 60000)).map((r) => [r.group.key!.groupIndex, r.group]));

    for (const c of got.get(10)!.completions) expect(c).toMatchObject({ turns: 1, endReason: 'environment error: the test environment broke' });
    for (const c of got.get(11)!.completions) expect(c).toMatchObject({ turns: 1, endReason: `environment timed out after ${timeoutMs} ms (step)` });
    for (const c of got.get(12)!.completions) expect(c).toMatchObject({ turns: 4, endReason: 'max_turns' });
    for (const c of got.get(13)!.completions) {
      expect(c.turns).toBeGreaterThanOrEqual(1);
      expect(['done', 'max_turns', 'token_budget']).toContain(c.endReason);
      // Every observation token is masked out, every sampled one in.
      expect(c.lossMask).toHaveLength(c.tokenIds.length);
    }
    expect(batches.at(-1)).toEqual([10, 11, 12, 13]);
    // The hung conversations held only themselves: the clock's 4 turns in each of its 2 conversations all came and were answered while they hung.
    expect(slowStarted).toHaveLength(2);
    expect(clockSteps).toHaveLength(8);
    const hungUntil = Math.min(...slowStarted) + timeoutMs;
    expect(clockSteps.filter((t) => t < hungUntil)).toHaveLength(8);
  }, 90000);

  it('terminates a request whose environment spec is wrong, naming the field', async () => {
    const before = worker.stats.rejected;
    await publish(stack, request(20, { name: 'guess_number', options: { highest: 3 } } as never));
    await publish(stack, request(21, { name: 'chess' } as never));
    for (let i = 0; i < 100 && worker.stats.rejected < before + 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(worker.stats.rejected).toBe(before + 2);
    const reasons = logs.entries.filter((e) => e.msg === 'rollout request rejected; parked on the dead-letter subject').map((e) => e.reason);
    expect(reasons).toContain('environment.options.highest unknown option (known: low, high)');
    expect(reasons).toContainEqual(expect.stringContaining('environment.name unknown environment "chess"'));
  }, 30000);
});
