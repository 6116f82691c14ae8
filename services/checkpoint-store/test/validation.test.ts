// What a client may send: file paths that stay inside the checkpoint, well-formed hashes
// and names; and the canonical manifest encoding ids are computed from.
import * as grpc from '@grpc/grpc-js';
import { CheckpointManifest, GetCheckpointResponse, PutCheckpointRequest, PutHeader } from '@temper/proto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { checkpointId, filePathProblem, wireForTests } from '@temper/checkpoint-client';
import { startTestStore, tempDir, TestStore } from './helpers';

const sha = (c: string) => c.repeat(64);

describe('path traversal', () => {
  let t: TestStore;
  beforeAll(async () => {
    t = await startTestStore();
  });
  afterAll(async () => {
    await t?.stop();
  });

  const hostile = ['../escape.bin', 'a/../../escape.bin', '/etc/passwd', 'C:/windows/x', 'a\\..\\b', 'a//b', './a', 'a/.', '', 'bad\u0000name'];

  it.each(hostile)('refuses the file path %j with INVALID_ARGUMENT naming it', async (bad) => {
    const header = PutHeader.fromPartial({
      uploadId: 'traversal',
      manifest: { runId: 'r', files: [{ path: 'config.json', size: 2, sha256: sha('a') }, { path: bad, size: 10, sha256: sha('b') }] },
    });
    const err = await new Promise<grpc.ServiceError | null>((resolve) => t.client.raw.startUpload({ header }, (e) => resolve(e)));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain('files[1].path');
    expect(err?.details).toContain(JSON.stringify(bad));
  });

  it('refuses them on the put stream too, before writing anything', async () => {
    const header = PutHeader.fromPartial({ uploadId: 'traversal-2', manifest: { runId: 'r', files: [{ path: '../../x', size: 1, sha256: sha('c') }] } });
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = t.client.raw.putCheckpoint((e) => resolve(e));
      call.write({ part: { $case: 'header', value: header } });
      call.write({ part: { $case: 'chunk', value: { path: '../../x', offset: 0, data: Buffer.from('x') } } });
      call.write({ part: { $case: 'commit', value: {} } });
      call.end();
    });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain('"../../x"');
    expect(await fsp.readdir(path.join(t.root, 'store', 'uploads'))).toEqual([]);
    await expect(fsp.access(path.join(t.root, 'x'))).rejects.toThrow();
  });

  it('refuses bad upload ids, hashes, duplicate paths and a file that is also a directory', async () => {
    const cases: [PutHeader, string][] = [
      [PutHeader.fromPartial({ uploadId: '../up', manifest: { files: [{ path: 'a', size: 1, sha256: sha('a') }] } }), 'upload_id'],
      [PutHeader.fromPartial({ uploadId: 'u1', manifest: { files: [{ path: 'a', size: 1, sha256: 'nothex' }] } }), 'files[0].sha256'],
      [PutHeader.fromPartial({ uploadId: 'u2', manifest: { files: [{ path: 'a', size: 1, sha256: sha('a') }, { path: 'a', size: 1, sha256: sha('a') }] } }), 'appears twice'],
      [PutHeader.fromPartial({ uploadId: 'u3', manifest: { files: [{ path: 'a', size: 1, sha256: sha('a') }, { path: 'a/b', size: 1, sha256: sha('a') }] } }), 'both a file and the directory'],
      [PutHeader.fromPartial({ uploadId: 'u4', manifest: { files: [] } }), 'files is empty'],
      [PutHeader.fromPartial({ uploadId: 'u5', manifest: { parentId: 'HEAD~1', files: [{ path: 'a', size: 1, sha256: sha('a') }] } }), 'parent_id'],
    ];
    for (const [header, needle] of cases) {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => t.client.raw.startUpload({ header }, (e) => resolve(e)));
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toContain(needle);
    }
  });

  it('pushDir never reads outside the directory (symlinked files are followed, listed by their own name)', async () => {
    const work = await tempDir();
    await fsp.mkdir(path.join(work, 'ckpt'));
    await fsp.writeFile(path.join(work, 'outside.bin'), 'outside');
    await fsp.symlink(path.join(work, 'outside.bin'), path.join(work, 'ckpt', 'linked.bin'));
    const { manifest } = await t.client.pushDir(path.join(work, 'ckpt'), { runId: 'r' });
    expect(manifest.files.map((f) => f.path)).toEqual(['linked.bin']);
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('unit: filePathProblem accepts ordinary nested paths only', () => {
    expect(filePathProblem('model-00001-of-00002.safetensors')).toBeUndefined();
    expect(filePathProblem('adapter/adapter_model.safetensors')).toBeUndefined();
    expect(filePathProblem('..hidden/ok..name')).toBeUndefined();
    for (const bad of hostile) expect(filePathProblem(bad)).toBeDefined();
  });
});

describe('manifest ids', () => {
  const base = CheckpointManifest.fromPartial({
    files: [
      { path: 'b.safetensors', size: 10, sha256: sha('b') },
      { path: 'a.json', size: 2, sha256: sha('a') },
    ],
    runId: 'run',
    branch: 'main',
    step: 5,
    metrics: { loss: 1.5, acc: 0.25 },
    labels: { x: '1', y: '2' },
  });

  it('does not depend on file order, map order, created_at or the id field', () => {
    const shuffled = CheckpointManifest.fromPartial({
      ...base,
      id: 'whatever',
      files: [...base.files].reverse(),
      metrics: { acc: 0.25, loss: 1.5 },
      labels: { y: '2', x: '1' },
      createdAt: new Date(),
    });
    expect(checkpointId(shuffled)).toBe(checkpointId(base));
  });

  it('changes with any content or provenance', () => {
    const id = checkpointId(base);
    expect(checkpointId({ ...base, step: 6 })).not.toBe(id);
    expect(checkpointId({ ...base, parentId: sha('f') })).not.toBe(id);
    expect(checkpointId({ ...base, metrics: { loss: 1.5, acc: 0.5 } })).not.toBe(id);
    expect(checkpointId({ ...base, files: [{ ...base.files[0], sha256: sha('c') }, base.files[1]] })).not.toBe(id);
  });
});

describe('chunk wire format', () => {
  it('matches the generated protobuf code both ways', () => {
    const chunk = { path: 'model-00001-of-00002.safetensors', offset: 3 * 2 ** 32 + 17, data: Buffer.from('hello world') };
    const fast = wireForTests.encodeChunkMessage(chunk);
    expect(Buffer.from(PutCheckpointRequest.encode({ part: { $case: 'chunk', value: chunk } }).finish()).equals(fast)).toBe(true);
    expect(GetCheckpointResponse.decode(fast)).toEqual({ part: { $case: 'chunk', value: chunk } });
    expect(wireForTests.decodeChunkMessage(fast)).toEqual(chunk);
    // A header is not a chunk: the fast path declines it.
    const header = Buffer.from(PutCheckpointRequest.encode({ part: { $case: 'header', value: PutHeader.fromPartial({ uploadId: 'u' }) } }).finish());
    expect(wireForTests.decodeChunkMessage(header)).toBeUndefined();
  });
});
