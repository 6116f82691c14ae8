// RolloutGenerator over loopback gRPC with a tiny model that went through the real
// checkpoint store: Generate (text and ids, n samples, log-probs that match the engine's
// teacher-forced ones, stop strings, reproducible seeds), bad input named by field, policies
// too old, LoadPolicy and GetServingInfo.
import * as grpc from '@grpc/grpc-js';
import { Model } from '@temper/native';
import { FinishReason, GenerateRequest, GenerateResponse, GetServingInfoResponse, LoadPolicyRequest, LoadPolicyResponse, RolloutGeneratorClient } from '@temper/proto';
import { RunningGrpcServer, startGrpcServer } from '@temper/service';
import { rolloutGeneratorBinding } from '../src/grpc';
import { PolicyManager } from '../src/policy';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { maxAbsDiff, pushTinyPolicy, saveTinyModel, Stack, startStack, teacherForcedLogprobs, testLogger, tokenizer, tracer } from './helpers';

type GenerateInput = Parameters<typeof GenerateRequest.fromPartial>[0];
type Unary<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;

function call<Req, Res>(client: InstanceType<typeof RolloutGeneratorClient>, fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
}

describe('RolloutGenerator over gRPC', () => {
  let stack: Stack;
  let policy: PolicyManager;
  let server: RunningGrpcServer;
  let client: InstanceType<typeof RolloutGeneratorClient>;
  let v1: { manifest: { id: string }; model: Model };
  const generate = (req: GenerateInput) => call<GenerateRequest, GenerateResponse>(client, client.generate, GenerateRequest.fromPartial(req));
  const loadPolicy = (req: Partial<LoadPolicyRequest>) => call<LoadPolicyRequest, LoadPolicyResponse>(client, client.loadPolicy, LoadPolicyRequest.fromPartial(req));
  const servingInfo = () => call<object, GetServingInfoResponse>(client, client.getServingInfo, {});

  beforeAll(async () => {
    stack = await startStack();
    policy = stack.policyManager();
    server = await startGrpcServer({ address: '127.0.0.1:0', services: [rolloutGeneratorBinding({ policy, tracer, log: testLogger(), generatorId: 'gen-test' })] });
    client = new RolloutGeneratorClient(server.address, grpc.credentials.createInsecure());
    v1 = await pushTinyPolicy(stack, { runId: 'run-grpc', version: 1, seed: 11 });
  }, 60000);

  afterAll(async () => {
    client?.close();
    await server?.stop(1000);
    await stack?.stop();
  });

  it('says FAILED_PRECONDITION before any policy is loaded', async () => {
    await expect(generate({ prompts: [{ text: 'hi', tokenIds: [] }], sampling: { maxNewTokens: 4 } })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('no policy is loaded'),
    });
    const info = await servingInfo();
    expect(info.checkpointId).toBe('');
    expect(info.generatorId).toBe('gen-test');
  });

  it('loads a policy from the store and reports it', async () => {
    await expect(loadPolicy({ checkpoint: 'no-such-checkpoint' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(loadPolicy({})).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^checkpoint /) });
    // Version 0: the version the run announced for this checkpoint.
    const res = await loadPolicy({ checkpoint: v1.manifest.id });
    expect(res.policyVersion).toBe(1);
    expect(res.manifest?.id).toBe(v1.manifest.id);
    const info = await servingInfo();
    expect(info).toMatchObject({ checkpointId: v1.manifest.id, policyVersion: 1, runId: 'run-grpc', device: 'cpu', sequencesInFlight: 0 });
    expect(info.model).toMatchObject({ modelType: 'llama', vocabSize: tokenizer.vocabSize, hiddenSize: 32, numLayers: 2 });
  }, 30000);

  it('samples n completions per prompt with the engine log-probs of each token', async () => {
    const textPrompt = 'Q: 2+2?\nA: ';
    const res = await generate({
      prompts: [{ text: textPrompt, tokenIds: [] }, { text: '', tokenIds: [256 + 1, 65, 66, 67] }],
      sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 12, seed: 7, n: 3 },
    });
    expect(res.policyVersion).toBe(1);
    expect(res.checkpointId).toBe(v1.manifest.id);
    expect(res.results).toHaveLength(2);
    const promptIds = [Array.from(tokenizer.encode(textPrompt)), [257, 65, 66, 67]];
    for (const [i, r] of res.results.entries()) {
      expect(r.completions).toHaveLength(3);
      for (const c of r.completions) {
        expect(c.tokenIds.length).toBeGreaterThan(0);
        expect(c.tokenIds.length).toBeLessThanOrEqual(12);
        expect(c.logprobs).toHaveLength(c.tokenIds.length);
        expect([FinishReason.FINISH_REASON_STOP, FinishReason.FINISH_REASON_LENGTH]).toContain(c.finishReason);
        if (c.finishReason === FinishReason.FINISH_REASON_LENGTH) expect(c.tokenIds).toHaveLength(12);
        expect(c.text).toBe(tokenizer.decode(c.tokenIds, { skipSpecialTokens: true }));
        const ref = await teacherForcedLogprobs(v1.model, promptIds[i], c.tokenIds);
        expect(maxAbsDiff(c.logprobs, ref)).toBeLessThan(1e-4);
      }
    }
    // The three samples of a prompt are not one sample three times.
    const texts = new Set(res.results[0].completions.map((c) => c.tokenIds.join(',')));
    expect(texts.size).toBeGreaterThan(1);
    // Same seed, same policy, same prompts: same completions.
    const again = await generate({
      prompts: [{ text: textPrompt, tokenIds: [] }, { text: '', tokenIds: [257, 65, 66, 67] }],
      sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 12, seed: 7, n: 3 },
    });
    expect(again.results).toEqual(res.results);
  }, 30000);

  it('ends a completion at a stop string, keeping the token that completed it', async () => {
    const prompt = { text: 'abc', tokenIds: [] };
    const greedy = await generate({ prompts: [prompt], sampling: { temperature: 0, maxNewTokens: 24 } });
    const full = greedy.results[0].completions[0];
    const decode = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });
    const fullText = decode(full.tokenIds);
    expect(fullText.length).toBeGreaterThan(5);
    const stop = fullText.slice(3, 5);
    // The oracle: the first prefix of the greedy tokens whose text holds the stop string.
    let k = 1;
    while (!decode(full.tokenIds.slice(0, k)).includes(stop)) k++;
    const stopped = await generate({ prompts: [prompt], sampling: { temperature: 0, maxNewTokens: 24, stopStrings: ['never-there', stop] } });
    const c = stopped.results[0].completions[0];
    expect(c.finishReason).toBe(FinishReason.FINISH_REASON_STOP);
    expect(c.tokenIds).toEqual(full.tokenIds.slice(0, k));
    expect(c.logprobs).toEqual(full.logprobs.slice(0, k));
    const prefix = decode(full.tokenIds.slice(0, k));
    expect(c.text).toBe(prefix.slice(0, prefix.indexOf(stop) + stop.length));
    expect(c.text.endsWith(stop)).toBe(true);
  }, 30000);

  it('stops at a stop token (and at EOS) with finish reason STOP', async () => {
    const greedy = await generate({ prompts: [{ text: 'xyz', tokenIds: [] }], sampling: { temperature: 0, maxNewTokens: 16 } });
    const full = greedy.results[0].completions[0];
    const stopId = full.tokenIds[2];
    const first = full.tokenIds.indexOf(stopId);
    const res = await generate({ prompts: [{ text: 'xyz', tokenIds: [] }], sampling: { temperature: 0, maxNewTokens: 16, stopTokenIds: [stopId] } });
    const c = res.results[0].completions[0];
    expect(c.finishReason).toBe(FinishReason.FINISH_REASON_STOP);
    expect(c.tokenIds).toEqual(full.tokenIds.slice(0, first + 1));
    // EOS always stops: a prompt whose greedy continuation we force to be EOS is not possible
    // with random weights, so check that no completion carries EOS anywhere but at its end.
    const eos = tokenizer.specialTokens.eos!;
    const many = await generate({ prompts: [{ text: 'q', tokenIds: [] }], sampling: { temperature: 1.5, maxNewTokens: 32, n: 16, seed: 3 } });
    for (const x of many.results[0].completions) {
      const at = x.tokenIds.indexOf(eos);
      if (at >= 0) {
        expect(at).toBe(x.tokenIds.length - 1);
        expect(x.finishReason).toBe(FinishReason.FINISH_REASON_STOP);
      }
    }
  }, 30000);

  it('stops at every eos_token_id of the model directory\'s generation_config.json', async () => {
    const prompt = { text: 'xyz', tokenIds: [] };
    const greedy = await generate({ prompts: [prompt], sampling: { temperature: 0, maxNewTokens: 16 } });
    const full = greedy.results[0].completions[0];
    const second = full.tokenIds[2];
    const first = full.tokenIds.indexOf(second);
    // The same weights (seed 11) in a directory whose generation config lists a second EOS.
    const dir = path.join(stack.root, 'two-eos');
    await saveTinyModel(dir, 11);
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [tokenizer.specialTokens.eos, second] }));
    const { manifest } = await stack.client.pushDir(dir, { runId: 'run-two-eos', stage: 'grpo', step: 1, branch: 'main' });
    await loadPolicy({ checkpoint: manifest.id, policyVersion: 1 });
    try {
      const res = await generate({ prompts: [prompt], sampling: { temperature: 0, maxNewTokens: 16 } });
      const c = res.results[0].completions[0];
      expect(c.finishReason).toBe(FinishReason.FINISH_REASON_STOP);
      expect(c.tokenIds).toEqual(full.tokenIds.slice(0, first + 1));
    } finally {
      await loadPolicy({ checkpoint: v1.manifest.id });
    }
  }, 30000);

  it('renders prompts with the chat template when asked', async () => {
    const sampling = { temperature: 1, maxNewTokens: 8, n: 2, seed: 4 };
    const templated = await generate({ prompts: [{ text: 'What is 3+4?' }], sampling, applyChatTemplate: true });
    const rendered = tokenizer.applyChatTemplate([{ role: 'user', content: 'What is 3+4?' }], { addGenerationPrompt: true });
    expect(rendered).toBe('Q: What is 3+4?\nA: ');
    const explicit = await generate({ prompts: [{ text: rendered }], sampling });
    expect(templated.results).toEqual(explicit.results);
    const plain = await generate({ prompts: [{ text: 'What is 3+4?' }], sampling });
    expect(plain.results).not.toEqual(templated.results);
    await expect(generate({ prompts: [{ tokenIds: [65] }], sampling, applyChatTemplate: true })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^prompts\[0\]\.token_ids /),
    });
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field', async () => {
    const cases: [GenerateInput, RegExp][] = [
      [{ prompts: [], sampling: { maxNewTokens: 4 } }, /^prompts /],
      [{ prompts: [{ text: 'a', tokenIds: [] }] }, /^sampling /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 0 } }, /^sampling\.max_new_tokens /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 4, temperature: -1 } }, /^sampling\.temperature /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 4, topP: 1.5 } }, /^sampling\.top_p /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 4, topK: -2 } }, /^sampling\.top_k /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 4, n: -1 } }, /^sampling\.n /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 4, stopTokenIds: [5, 99999] } }, /^sampling\.stop_token_ids\[1\] /],
      [{ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 4, stopStrings: [''] } }, /^sampling\.stop_strings\[0\] /],
      [{ prompts: [{ text: 'a', tokenIds: [] }, { text: '', tokenIds: [] }], sampling: { maxNewTokens: 4 } }, /^prompts\[1\] /],
      [{ prompts: [{ text: '', tokenIds: [1, tokenizer.vocabSize] }], sampling: { maxNewTokens: 4 } }, /^prompts\[0\]\.token_ids\[1\] /],
      [{ prompts: [{ text: 'x'.repeat(250), tokenIds: [] }], sampling: { maxNewTokens: 10 } }, /^prompts\[0\] .*256 positions/],
    ];
    for (const [req, field] of cases) {
      const err = await generate(req).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err).toBeDefined();
      expect({ code: err!.code, details: err!.details }).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(field) });
    }
  });

  it('says FAILED_PRECONDITION when the served policy is older than min_policy_version', async () => {
    await expect(generate({ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 2 }, minPolicyVersion: 2 })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('min_policy_version 2'),
    });
    const ok = await generate({ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 2 }, minPolicyVersion: 1 });
    expect(ok.policyVersion).toBe(1);
  });

  it('serves a checkpoint as the version LoadPolicy names', async () => {
    const v5 = await pushTinyPolicy(stack, { runId: 'run-grpc-other', version: 0, seed: 12 });
    const res = await loadPolicy({ checkpoint: v5.manifest.id, policyVersion: 5 });
    expect(res.policyVersion).toBe(5);
    const info = await servingInfo();
    expect(info).toMatchObject({ checkpointId: v5.manifest.id, policyVersion: 5, runId: 'run-grpc-other' });
    const out = await generate({ prompts: [{ text: 'a', tokenIds: [] }], sampling: { maxNewTokens: 6, seed: 1 }, minPolicyVersion: 5 });
    const ref = await teacherForcedLogprobs(v5.model, tokenizer.encode('a'), out.results[0].completions[0].tokenIds);
    expect(maxAbsDiff(out.results[0].completions[0].logprobs, ref)).toBeLessThan(1e-4);
  }, 30000);
});
