// A multi-shard model directory pushed and pulled back byte-for-byte through each backend,
// over loopback gRPC.
import * as grpc from '@grpc/grpc-js';
import { Objm } from '@nats-io/obj';
import { connectBus } from '@temper/bus';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { testNatsUrl } from '../../../test/harness/nats';
import { expectSameTree, makeModelDir, startTestStore, tempDir, TestStore, uniqueBucket } from './helpers';

describe.each(['fs', 'nats'] as const)('round trip through the %s backend', (backend) => {
  let t: TestStore;
  let work: string;
  const bucket = uniqueBucket();
  beforeAll(async () => {
    t = await startTestStore({ backend, bucketPrefix: bucket });
    work = await tempDir();
  });
  afterAll(async () => {
    await t?.stop();
    if (backend === 'nats') {
      const bus = await connectBus(testNatsUrl(), 'cleanup');
      for (const s of ['blobs', 'meta']) await bus.jsm.streams.delete(`OBJ_${bucket}-${s}`).catch(() => undefined);
      await bus.close();
    }
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('returns every file of a multi-shard checkpoint byte for byte', async () => {
    const src = await makeModelDir(path.join(work, 'src'), { shards: 3, shardBytes: 1_500_000 });
    const pushed = await t.client.pushDir(src, { runId: 'run-1', stage: 'sft', step: 100, tokensSeen: 12345, branch: 'main', metrics: { loss: 1.25 }, labels: { note: 'x' } });
    expect(pushed.created).toBe(true);
    expect(pushed.manifest.id).toMatch(/^[0-9a-f]{64}$/);
    expect(pushed.manifest.files.map((f) => f.path)).toEqual([
      'adapter/adapter_config.json',
      'adapter/empty.bin',
      'config.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'tokenizer.json',
    ]);
    expect(pushed.manifest.createdAt).toBeInstanceOf(Date);

    const dest = path.join(work, 'dest');
    const pulled = await t.client.pullDir(pushed.manifest.id, dest, { chunkBytes: 256 * 1024 });
    expect(pulled.manifest).toEqual(pushed.manifest);
    await expectSameTree(src, dest);

    // The same directory again is the same checkpoint, and nothing is re-sent.
    const again = await t.client.pushDir(src, { runId: 'run-1', stage: 'sft', step: 100, tokensSeen: 12345, branch: 'main', metrics: { loss: 1.25 }, labels: { note: 'x' } });
    expect(again.manifest.id).toBe(pushed.manifest.id);
    expect(again.created).toBe(false);
    expect(again.bytesSent).toBe(0);
  });

  it('refuses to serve a stored file whose bytes changed behind its back', async () => {
    const dir = path.join(work, 'victim');
    await fsp.mkdir(dir);
    await fsp.writeFile(path.join(dir, 'config.json'), '{"model_type":"llama"}');
    await fsp.writeFile(path.join(dir, 'model.safetensors'), Buffer.alloc(300_000, 1));
    const { manifest } = await t.client.pushDir(dir, { runId: `victim-${backend}` });
    const shard = manifest.files.find((f) => f.path === 'model.safetensors')!;
    const bad = Buffer.alloc(300_000, 1);
    bad[150_000] = 2;
    if (backend === 'fs') {
      await fsp.writeFile(path.join(t.root, 'store', 'blobs', shard.sha256.slice(0, 2), shard.sha256), bad);
    } else {
      // Someone with access to the bucket replaces the object under the same name.
      const os = await new Objm(t.bus!.nc).open(`${bucket}-blobs`);
      await os.putBlob({ name: shard.sha256 }, bad);
    }
    const dest = path.join(work, 'victim-out');
    const err = await t.client.pullDir(manifest.id, dest).catch((e) => e);
    expect(err).toMatchObject({ code: grpc.status.DATA_LOSS });
    expect(err.message).toContain('model.safetensors');
    expect(await fsp.readdir(dest)).toEqual([]);
  });

  it('summarizes the model from config.json and the safetensors headers', async () => {
    const dir = path.join(work, 'tiny');
    await fsp.mkdir(path.join(dir, 'adapter'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'qwen2', hidden_size: 8, num_hidden_layers: 2, vocab_size: 32 }));
    const header = Buffer.from(JSON.stringify({ 'embed.weight': { dtype: 'BF16', shape: [32, 8], data_offsets: [0, 512] }, 'norm.weight': { dtype: 'BF16', shape: [8], data_offsets: [512, 528] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await fsp.writeFile(path.join(dir, 'model.safetensors'), Buffer.concat([len, header, Buffer.alloc(528)]));
    await fsp.writeFile(path.join(dir, 'adapter', 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', use_dora: true }));
    const { manifest } = await t.client.pushDir(dir, { runId: 'summary' });
    expect(manifest.model).toEqual({ modelType: 'qwen2', parameters: 32 * 8 + 8, vocabSize: 32, hiddenSize: 8, numLayers: 2, dtype: 'BF16', adapter: 'dora' });
  });

  it('pulls a subset of files and stores identical files once', async () => {
    const src = path.join(work, 'src');
    const other = await t.client.pushDir(src, { runId: 'run-1', branch: 'main', step: 200 });
    const blobs = await t.backend.listBlobs();
    // Two checkpoints with the same files: each distinct content is stored once.
    const distinct = new Set(other.manifest.files.map((f) => f.sha256));
    expect(blobs.filter((b) => distinct.has(b)).length).toBe(distinct.size);
    expect(other.bytesSent).toBe(0);

    const dest = path.join(work, 'subset');
    await t.client.pullDir(other.manifest.id.slice(0, 12), dest, { paths: ['config.json', 'adapter/empty.bin'] });
    expect((await fsp.readdir(dest)).sort()).toEqual(['adapter', 'config.json']);
    expect(await fsp.readFile(path.join(dest, 'config.json'))).toEqual(await fsp.readFile(path.join(src, 'config.json')));
    expect((await fsp.stat(path.join(dest, 'adapter', 'empty.bin'))).size).toBe(0);
  });
});
