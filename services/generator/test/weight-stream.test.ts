// Weights streamed by the learner ahead of their checkpoint: used when they are the
// announced checkpoint's, never otherwise, and never before it is announced.
import { publishWeights } from '@temper/bus';
import { Model } from '@temper/native';
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

  /** A new tiny model saved to disk, its weights streamed as `version`, not yet pushed. */
  async function streamed(version: number, seed: number, sendSeed = seed): Promise<{ dir: string; model: Model }> {
    const dir = path.join(stack.root, `stream-${version}-${seed}`);
    const model = await saveTinyModel(dir, seed);
    const sent = sendSeed === seed ? model : await Model.create(model.config, { seed: sendSeed, threads: 1 });
    await publishWeights(stack.bus.nc, RUN, version, await sent.exportWeights());
    return { dir, model };
  }

  const push = (dir: string, version: number) => stack.client.pushDir(dir, { runId: RUN, stage: 'grpo', step: version, branch: 'main' }, { policyVersion: version });

  it('loads a version from its streamed weights when they hash to the announced checkpoint\'s', async () => {
    const { dir, model } = await streamed(2, 32);
    // Streamed but not committed: not served, not staged.
    await new Promise((r) => setTimeout(r, 300));
    expect(policy.loadedAhead).toBeUndefined();
    const { manifest } = await push(dir, 2);
    const ahead = await waitFor('version 2 loaded ahead', () => policy.loadedAhead);
    expect(ahead.version).toBe(2);
    expect(ahead.manifest.id).toBe(manifest.id);
    expect(policy.loadedFrom).toEqual({ stream: 1, store: 0 });
    expect(Buffer.from(await ahead.model.exportWeights()).equals(Buffer.from(await model.exportWeights()))).toBe(true);
  }, 30000);

  it('pulls the checkpoint from the store when the streamed weights are not its own', async () => {
    const { dir, model } = await streamed(3, 33, 77);
    await push(dir, 3);
    const ahead = await waitFor('version 3 loaded ahead', () => (policy.loadedAhead?.version === 3 ? policy.loadedAhead : undefined));
    expect(policy.loadedFrom).toEqual({ stream: 1, store: 1 });
    expect(Buffer.from(await ahead.model.exportWeights()).equals(Buffer.from(await model.exportWeights()))).toBe(true);
  }, 30000);

  it('swaps streamed versions in at batch boundaries like any other', async () => {
    await policy.use(async () => undefined); // a batch boundary: version 3 goes in
    expect(policy.current?.version).toBe(3);
    const { dir, model } = await streamed(4, 34);
    await push(dir, 4);
    const served = await policy.ensure(RUN, 4);
    expect(served?.version).toBe(4);
    expect(policy.loadedFrom.stream).toBe(2);
    expect(Buffer.from(await served!.model.exportWeights()).equals(Buffer.from(await model.exportWeights()))).toBe(true);
  }, 30000);
});
