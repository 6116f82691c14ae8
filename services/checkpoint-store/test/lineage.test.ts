// Stable-then-Decay lineage: one stable line, several decay branches forking from it;
// movable tags; retention that keeps the last N per run and branch, tagged checkpoints and
// fork points; deletes refused while others descend from a checkpoint.
import * as grpc from '@grpc/grpc-js';
import { CheckpointManifest } from '@temper/proto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ManifestFields } from '@temper/checkpoint-client';
import { startTestStore, tempDir, TestStore } from './helpers';

describe('lineage, tags, retention and deletes', () => {
  let work: string;
  let t: TestStore;
  let n = 0;
  beforeAll(async () => {
    work = await tempDir();
  });
  afterEach(async () => {
    await t?.stop();
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  /** A tiny checkpoint with its own weights file plus a config shared by all of them. */
  async function push(fields: ManifestFields): Promise<CheckpointManifest> {
    const dir = path.join(work, `c${++n}`);
    await fsp.mkdir(dir);
    await fsp.writeFile(path.join(dir, 'config.json'), '{"model_type":"qwen2"}');
    await fsp.writeFile(path.join(dir, 'model.safetensors'), `weights ${n} ${fields.branch} ${fields.step}`);
    return (await t.client.pushDir(dir, { runId: 'std', ...fields })).manifest;
  }

  it('lists ancestors, descendants and the branches that fork from a stable checkpoint', async () => {
    t = await startTestStore();
    const s1 = await push({ branch: 'stable', stage: 'midtrain', step: 1000 });
    const s2 = await push({ branch: 'stable', stage: 'midtrain', step: 2000, parentId: s1.id });
    const s3 = await push({ branch: 'stable', stage: 'midtrain', step: 3000, parentId: s2.id });
    const decay: Record<string, CheckpointManifest[]> = {};
    for (const b of ['decay-math', 'decay-code', 'decay-mix']) {
      const d1 = await push({ branch: b, stage: 'midtrain', step: 3500, parentId: s3.id });
      const d2 = await push({ branch: b, stage: 'midtrain', step: 4000, parentId: d1.id });
      const g = await push({ branch: b, stage: 'grpo', step: 100, parentId: d2.id });
      decay[b] = [d1, d2, g];
    }
    const early = await push({ branch: 'decay-early', stage: 'midtrain', step: 2500, parentId: s2.id });

    const l3 = await t.client.lineage(s3.id);
    expect(l3.ancestors.map((m) => m.id)).toEqual([s2.id, s1.id]);
    expect(l3.branches).toEqual(['decay-code', 'decay-math', 'decay-mix']);
    expect(new Set(l3.descendants.map((m) => m.id))).toEqual(new Set(Object.values(decay).flat().map((m) => m.id)));

    const l2 = await t.client.lineage(s2.id);
    expect(l2.branches).toEqual(['decay-early']);
    expect(l2.descendants).toHaveLength(1 + 9 + 1); // s3, the three decay lines, decay-early

    const grpoMath = decay['decay-math'][2];
    const lg = await t.client.lineage(grpoMath.id);
    expect(lg.ancestors.map((m) => m.step)).toEqual([4000, 3500, 3000, 2000, 1000]);
    expect(lg.descendants).toEqual([]);
    expect(lg.branches).toEqual([]);
    expect((await t.client.lineage(early.id)).ancestors.map((m) => m.id)).toEqual([s2.id, s1.id]);

    // Filters.
    expect((await t.client.list({ branch: 'decay-code' })).checkpoints.map((m) => m.step)).toEqual([3500, 4000, 100]);
    expect((await t.client.list({ stage: 'grpo' })).checkpoints).toHaveLength(3);
    expect((await t.client.list({ runId: 'other' })).checkpoints).toEqual([]);

    // A child needs its parent in the store.
    await expect(push({ branch: 'x', parentId: 'f'.repeat(64) })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
  });

  it('moves tags, resolves them, and never moves ids', async () => {
    t = await startTestStore();
    const a = await push({ branch: 'stable', step: 1 });
    const b = await push({ branch: 'stable', step: 2, parentId: a.id });
    await t.client.tag(a.id, 'stable-final');
    await t.client.tag(a.id.slice(0, 10), 'best');
    let listed = await t.client.list();
    expect(listed.tags[a.id]).toEqual(['best', 'stable-final']);
    expect((await t.client.list({ tag: 'best' })).checkpoints.map((m) => m.id)).toEqual([a.id]);

    await t.client.tag(b.id, 'best'); // moved
    listed = await t.client.list();
    expect(listed.tags[a.id]).toEqual(['stable-final']);
    expect(listed.tags[b.id]).toEqual(['best']);
    const pulled = await t.client.pullDir('best', path.join(work, 'best'));
    expect(pulled.manifest.id).toBe(b.id);
    expect((await t.client.resolve('best')).id).toBe(b.id);
    expect((await t.client.resolve(a.id.slice(0, 12))).id).toBe(a.id);
    expect((await t.client.lineage('best')).checkpoint?.id).toBe(b.id);

    await t.client.tag(b.id, 'best', true);
    await expect(t.client.pullDir('best', path.join(work, 'gone'))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(t.client.resolve('best')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(t.client.tag(b.id, 'a'.repeat(64))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(t.client.tag(b.id, '../x')).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('refuses to delete a checkpoint others descend from unless forced', async () => {
    t = await startTestStore();
    const root = await push({ branch: 'stable', step: 1 });
    const child = await push({ branch: 'decay', step: 2, parentId: root.id });
    const err = await t.client.delete(root.id).catch((e) => e);
    expect(err).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    expect(err.message).toContain('descendant');
    await t.client.tag(child.id, 'keep');
    await expect(t.client.delete(child.id)).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    await t.client.tag(child.id, 'keep', true);

    const weights = (m: CheckpointManifest) => m.files.find((f) => f.path === 'model.safetensors')!.sha256;
    const config = root.files.find((f) => f.path === 'config.json')!.sha256;
    expect(await t.client.delete(child.id)).toEqual([child.id]);
    expect(await t.backend.hasBlob(weights(child))).toBe(false); // its own file went with it
    expect(await t.backend.hasBlob(config)).toBe(true); // the shared one stays

    const again = await push({ branch: 'decay', step: 3, parentId: root.id });
    expect(await t.client.delete(root.id, true)).toEqual([root.id]);
    expect(await t.backend.hasBlob(weights(root))).toBe(false);
    // The orphan keeps its parent id; its lineage simply ends there.
    expect((await t.client.lineage(again.id)).ancestors).toEqual([]);
    await expect(t.client.delete(root.id)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('keeps the last N per run and branch, tagged checkpoints and fork points', async () => {
    t = await startTestStore({ retention: { keepLast: 2 } });
    const s: CheckpointManifest[] = [];
    s.push(await push({ branch: 'stable', step: 1 }));
    await t.client.tag(s[0].id, 'stable-first'); // before it falls out of the last two
    for (let step = 2; step <= 3; step++) s.push(await push({ branch: 'stable', step, parentId: s.at(-1)!.id }));
    const d1 = await push({ branch: 'decay', step: 10, parentId: s[1].id });
    for (let step = 4; step <= 6; step++) s.push(await push({ branch: 'stable', step, parentId: s.at(-1)!.id }));
    const d2 = await push({ branch: 'decay', step: 11, parentId: d1.id });
    const d3 = await push({ branch: 'decay', step: 12, parentId: d2.id });
    const other = await push({ runId: 'other-run', branch: 'stable', step: 1 });

    const ids = new Set((await t.client.list()).checkpoints.map((m) => m.id));
    // stable: the last two (5, 6), the tagged first one, and step 2 where decay forks.
    expect([...ids].filter((id) => s.some((m) => m.id === id)).map((id) => s.find((m) => m.id === id)!.step).sort()).toEqual([1, 2, 5, 6]);
    // decay: the last two; d1 was pruned (nothing forks from it).
    expect(ids.has(d1.id)).toBe(false);
    expect(ids.has(d2.id) && ids.has(d3.id)).toBe(true);
    expect(ids.has(other.id)).toBe(true);
    // Pruned checkpoints' own files are gone, and they cannot be fetched...
    const weights = (m: CheckpointManifest) => m.files.find((f) => f.path === 'model.safetensors')!.sha256;
    expect(await t.backend.hasBlob(weights(s[2]))).toBe(false);
    expect(await t.backend.hasBlob(weights(d1))).toBe(false);
    expect(await t.backend.hasBlob(weights(s[5]))).toBe(true);
    const err = await t.client.pullDir(d1.id, path.join(work, 'pruned')).catch((e) => e);
    expect(err).toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(err.message).toContain('pruned');
    // ...but their manifests keep lineage whole: the newest decay checkpoint still leads back to the stable root.
    const lineage = await t.client.lineage(d3.id);
    expect(lineage.ancestors.map((m) => m.id)).toEqual([d2.id, d1.id, s[1].id, s[0].id]);
    expect(lineage.prunedIds).toEqual([d1.id]);
    const withPruned = await t.client.list({ includePruned: true, runId: 'std', branch: 'stable' });
    expect(withPruned.checkpoints).toHaveLength(6);
    expect(new Set(withPruned.prunedIds)).toEqual(new Set([s[2].id, s[3].id]));
  });
});
