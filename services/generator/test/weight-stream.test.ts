// Weights streamed by the learner ahead of their checkpoint: staged as soon as they arrive
// when their version is published, the checkpoint attached once committed, and replaced from
// the store when the checkpoint holds something else.
import { publishMessage, publishWeights, subjects } from '@temper/bus';
import { Model } from '@temper/native';
import { PolicyPublished } from '@temper/proto';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { PolicyManager } from '../src/policy';
import { pushTinyPolicy, saveTinyModel, Stack, startStack, waitFor } from './helpers';

const RUN = 'stream-run';

describe('streamed policy weights', () => {
  let stack: Stack;
  let policy: PolicyManager;

  beforeAll(async () => {
    stack = await startStack();
    const first = await pushTinyPolicy(stack, { runId: RUN, version: 1, seed: 31 });
    policy = stack.policyManager(await stack.connect('stream-test'));
    await policy.loadPolicy(first.manifest.id);
    expect(policy.current?.version).toBe(1);
  }, 60000);

  afterAll(async () => {
    await stack?.stop();
  });

  const weightsOf = async (m: Model) => Buffer.from(await m.exportWeights());
  /** The generator only samples: its models are frozen (under bf16 that drops their fp32 masters). */
  const refusesBackward = async (m: Model) => {
    await m.logprobs(new Int32Array([1, 2, 3, 4]), { batch: 1, seqLen: 4 });
    await expect(m.backward(new Float32Array(3).fill(-1))).rejects.toThrow(/frozen/);
  };

  /** A new tiny model saved to disk as `version` (not pushed), its weights streamed; published first unless told not to. */
  async function streamed(version: number, seed: number, opts: { publish?: boolean } = {}): Promise<{ dir: string; model: Model }> {
    const dir = path.join(stack.root, `stream-${version}-${seed}`);
    const model = await saveTinyModel(dir, seed);
    const bytes = await model.exportWeights();
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (opts.publish !== false) {
      await publishMessage(stack.bus.js, subjects.policyPublished(RUN), PolicyPublished, { runId: RUN, policyVersion: version, weightsSha256: sha });
    }
    await publishWeights(stack.bus.nc, RUN, version, bytes, sha);
    return { dir, model };
  }

  const push = (dir: string, version: number) => stack.client.pushDir(dir, { runId: RUN, stage: 'grpo', step: version, branch: 'main' }, { policyVersion: version });

  it('stages a published version from its streamed weights before its checkpoint exists, then attaches the checkpoint', async () => {
    const { dir, model } = await streamed(2, 32);
    const ahead = await waitFor('version 2 staged', () => policy.loadedAhead);
    expect(ahead.version).toBe(2);
    expect(ahead.manifest.id).toBe(''); // not committed yet
    expect(policy.loadedFrom).toEqual({ stream: 1, store: 0 });
    expect((await weightsOf(ahead.model)).equals(await weightsOf(model))).toBe(true);
    const { manifest } = await push(dir, 2);
    await waitFor('the checkpoint attached', () => policy.loadedAhead?.manifest.id === manifest.id || undefined);
    expect(policy.loadedAhead).toBe(ahead); // the same policy, now with its checkpoint
    expect(policy.loadedFrom).toEqual({ stream: 1, store: 0 });
  }, 30000);

  it('ignores weights streamed for a version the learner never published; the checkpoint comes from the store', async () => {
    const { dir, model } = await streamed(3, 33, { publish: false });
    await new Promise((r) => setTimeout(r, 300));
    expect(policy.loadedAhead?.version).toBe(2);
    await push(dir, 3);
    const ahead = await waitFor('version 3 loaded ahead', () => (policy.loadedAhead?.version === 3 ? policy.loadedAhead : undefined));
    expect(policy.loadedFrom).toEqual({ stream: 1, store: 1 });
    expect((await weightsOf(ahead.model)).equals(await weightsOf(model))).toBe(true);
  }, 30000);

  it('replaces streamed weights from the store when the committed checkpoint holds others', async () => {
    await streamed(4, 34);
    await waitFor('version 4 staged', () => policy.loadedAhead?.version === 4 || undefined);
    const other = await pushTinyPolicy(stack, { runId: RUN, version: 4, seed: 44 });
    await waitFor('version 4 from the store', () => (policy.loadedAhead?.manifest.id === other.manifest.id ? true : undefined));
    expect(policy.loadedAhead?.version).toBe(4);
    expect((await weightsOf(policy.loadedAhead!.model)).equals(await weightsOf(other.model))).toBe(true);
    expect(policy.loadedFrom).toEqual({ stream: 2, store: 2 });
  }, 30000);

  it('serves a request waiting for a version as soon as its weights arrive, at a batch boundary (models frozen)', async () => {
    await policy.use(async () => undefined); // a batch boundary: version 4 goes in
    expect(policy.current?.version).toBe(4);
    await refusesBackward(policy.current!.model); // loaded from the store
    const waiting = policy.ensure(RUN, 5); // nothing of version 5 anywhere yet
    await new Promise((r) => setTimeout(r, 50));
    const { model } = await streamed(5, 35);
    const served = await waiting; // no checkpoint of version 5 is ever pushed
    expect(served?.version).toBe(5);
    expect(served?.manifest.id).toBe('');
    expect((await weightsOf(served!.model)).equals(await weightsOf(model))).toBe(true);
    await refusesBackward(served!.model); // made for streamed weights
  }, 30000);

  it('gives up on a version that does not come, for the request to be retried', async () => {
    const started = performance.now();
    expect(await policy.ensure(RUN, 9)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
  }, 30000);
});
