// The checkpoint store: uploads, commits, reads, listing, lineage, tags, deletes and
// retention over one backend. Everything a client sends is checked here (paths, hashes,
// parents), and everything read is checked again before it is handed out, so each
// backend gets the same guarantees.
import { DEFAULT_CHUNK_BYTES, type ListFilter } from '@temper/checkpoint-client';
import { CheckpointManifest, FileChunk, FileProgress, PutHeader } from '@temper/proto';
import type { Logger } from '@temper/service';
import { createHash } from 'node:crypto';
import { Backend } from './backends/backend';
import { dataLoss, failedPrecondition, invalidArgument, notFound, unavailable } from './errors';
import { chronological, LineageGraph } from './lineage';
import { sealManifest } from './manifest';
import { checkTag, isSha256 } from './names';
import { pruneCandidates, RetentionPolicy } from './retention';
import { StagingQuota, Upload, Uploads } from './uploads';

export interface CheckpointStoreOptions {
  backend: Backend;
  /** Where uploads in progress are kept (for the fs backend: on the same filesystem). */
  stagingDir: string;
  retention?: RetentionPolicy;
  /** Called after a new checkpoint is committed (publishes CheckpointCommitted). */
  onCommitted?: (manifest: CheckpointManifest, policyVersion: number) => Promise<void>;
  /**
   * Uploads no stream has touched for this long are dropped, with the files only they
   * held, by a sweep every hour (and one at open). 0 (default) never drops them.
   */
  uploadTtlMs?: number;
  /** Bounds on the bytes uploads in progress stage (default: none). */
  quota?: StagingQuota;
  log?: Logger;
}

export interface Lineage {
  checkpoint: CheckpointManifest;
  ancestors: CheckpointManifest[];
  descendants: CheckpointManifest[];
  branches: string[];
  prunedIds: string[];
}

const MIN_CHUNK_BYTES = 4 << 10;
const MAX_CHUNK_BYTES = 8 << 20;

export class CheckpointStore {
  readonly uploads: Uploads;
  private readonly manifests = new Map<string, CheckpointManifest>();
  private queue: Promise<unknown> = Promise.resolve();
  private sweeper?: NodeJS.Timeout;

  private constructor(private readonly opts: CheckpointStoreOptions) {
    this.uploads = new Uploads(opts.stagingDir, opts.backend, opts.quota);
  }

  static async open(opts: CheckpointStoreOptions): Promise<CheckpointStore> {
    const store = new CheckpointStore(opts);
    const { removed, unreadable } = await store.uploads.init();
    if (removed.length > 0) opts.log?.warn('removed uploads that need more staging than one upload may now have', { uploads: removed, quota: opts.quota });
    for (const { id, err } of unreadable) opts.log?.warn('an upload in progress could not be read; the expiry sweep will remove it', { upload: id, err });
    const ttl = opts.uploadTtlMs ?? 0;
    if (ttl > 0) {
      await store.sweep(ttl);
      store.sweeper = setInterval(() => {
        store.sweep(ttl).catch((err) => opts.log?.warn('sweeping abandoned uploads failed', { err }));
      }, 3600_000);
      store.sweeper.unref();
    }
    return store;
  }

  /** Drops uploads idle for longer than maxIdleMs, then blobs nothing refers to any more. */
  async sweep(maxIdleMs: number): Promise<{ uploads: string[]; blobs: number }> {
    const uploads = await this.uploads.expire(maxIdleMs);
    const blobs = await this.collectGarbage();
    if (uploads.length > 0 || blobs > 0) this.opts.log?.info('swept abandoned uploads', { uploads, blobs });
    return { uploads, blobs };
  }

  /** Deletes every stored blob that no live checkpoint and no upload in progress refers to. */
  async collectGarbage(): Promise<number> {
    return this.exclusive(async () => {
      const all = new Set(await this.backend.listBlobs());
      const before = all.size;
      await this.deleteUnreferenced(all);
      return before - (await this.backend.listBlobs()).length;
    });
  }

  get backend(): Backend {
    return this.opts.backend;
  }

  /** Registers (or finds) an upload and reports what the store already holds of it. */
  async startUpload(header: PutHeader): Promise<FileProgress[]> {
    return (await this.uploads.start(header)).progress();
  }

  async uploadStatus(uploadId: string): Promise<{ files: FileProgress[]; active: boolean }> {
    const upload = await this.uploads.find(uploadId);
    if (!upload) throw notFound(`upload ${uploadId} is not in progress (never started, or already committed)`);
    return { files: upload.progress(), active: upload.inUse };
  }

  /**
   * Makes a fully received upload a checkpoint: checks its parent, computes the id, stores
   * the manifest (unless that id exists already), applies retention, and announces it.
   */
  async commit(upload: Upload): Promise<{ manifest: CheckpointManifest; created: boolean }> {
    const missing = upload.incomplete();
    if (missing.length > 0) {
      const list = missing.map((f) => `${f.path} (${f.received}/${f.size} bytes)`).join(', ');
      throw failedPrecondition(`commit before every file arrived; missing: ${list}`);
    }
    const input = upload.header.manifest!;
    const result = await this.exclusive(async () => {
      for (const f of input.files) {
        if (!(await this.backend.hasBlob(f.sha256))) {
          throw failedPrecondition(`file ${JSON.stringify(f.path)} (${f.sha256}) is no longer in the store; start the upload again`);
        }
      }
      const sealed = sealManifest(input, new Date());
      // Stored already (its parent was checked then): a second push, or an announcement.
      const existing = await this.manifest(sealed.id);
      if (existing) return { manifest: existing, created: false };
      if (input.parentId && !(await this.manifest(input.parentId))) {
        throw failedPrecondition(`header.manifest.parent_id ${input.parentId} is not a checkpoint in the store`);
      }
      await this.backend.putManifest(sealed);
      this.manifests.set(sealed.id, sealed);
      await this.applyRetention();
      return { manifest: sealed, created: true };
    });
    await this.uploads.remove(upload);
    if (result.created) {
      this.opts.log?.info('checkpoint committed', { id: result.manifest.id, run: result.manifest.runId, branch: result.manifest.branch, step: result.manifest.step });
    }
    // A put that names a policy version is announced even when the content was stored already:
    // a step redone after a resume can reproduce a checkpoint, and it is still the new version.
    if (result.created || upload.header.policyVersion > 0) {
      if (this.opts.onCommitted) {
        try {
          await this.opts.onCommitted(result.manifest, upload.header.policyVersion);
        } catch (err) {
          // The checkpoint is stored; its announcement is not, and generators waiting for the
          // version would never hear of it (the chaos run lost two to a NATS restart). The put
          // fails as UNAVAILABLE: the client's retry finds the checkpoint stored and announces
          // it again (the message id keeps that to one event).
          this.opts.log?.warn('could not publish CheckpointCommitted; the put is refused so that its retry announces it', { id: result.manifest.id, err });
          throw unavailable(`checkpoint ${result.manifest.id} is stored but could not be announced (${err instanceof Error ? err.message : String(err)}); put it again to announce it`);
        }
      }
    }
    return result;
  }

  /** An id, a unique id prefix of 8+ hex digits, or a tag. */
  async resolve(ref: string, field = 'checkpoint'): Promise<CheckpointManifest> {
    if (!ref) throw invalidArgument(`${field} is required (an id, id prefix or tag)`);
    if (isSha256(ref)) {
      const m = await this.manifest(ref);
      if (m) return m;
    }
    const tagged = (await this.backend.readTags()).get(ref);
    if (tagged) {
      const m = await this.manifest(tagged);
      if (m) return m;
      throw notFound(`tag ${JSON.stringify(ref)} points at ${tagged}, which is no longer in the store`);
    }
    if (/^[0-9a-f]{8,63}$/.test(ref)) {
      const matches = (await this.backend.listManifestIds()).filter((id) => id.startsWith(ref));
      if (matches.length === 1) return (await this.manifest(matches[0]))!;
      if (matches.length > 1) throw invalidArgument(`${field} ${JSON.stringify(ref)} is a prefix of ${matches.length} checkpoint ids`);
    }
    throw notFound(`${field} ${JSON.stringify(ref)} is not a checkpoint id, id prefix or tag in the store`);
  }

  /** Like resolve, but refuses a checkpoint whose files retention removed. */
  private async resolveLive(ref: string): Promise<CheckpointManifest> {
    const m = await this.resolve(ref);
    if ((await this.backend.readPruned()).has(m.id)) {
      throw notFound(`checkpoint ${m.id} was pruned by retention: its manifest is kept for lineage, its files are gone`);
    }
    return m;
  }

  /**
   * A checkpoint's manifest and its files' bytes in order. Each file is hashed as it is
   * read and its last chunk is held back until the hash matches, so a corrupt file ends
   * the stream with DATA_LOSS before the reader has all of it.
   */
  async open(
    ref: string,
    paths: string[] = [],
    chunkBytes = DEFAULT_CHUNK_BYTES,
    alloc?: (size: number, path: string) => Buffer,
  ): Promise<{ manifest: CheckpointManifest; chunks: AsyncIterable<FileChunk> }> {
    const manifest = await this.resolveLive(ref);
    const byPath = new Map(manifest.files.map((f) => [f.path, f]));
    for (const [i, p] of paths.entries()) {
      if (!byPath.has(p)) throw notFound(`paths[${i}] ${JSON.stringify(p)} is not a file of checkpoint ${manifest.id}`);
    }
    const files = paths.length > 0 ? manifest.files.filter((f) => paths.includes(f.path)) : manifest.files;
    const size = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, chunkBytes || DEFAULT_CHUNK_BYTES));
    const backend = this.backend;
    async function* chunks(): AsyncGenerator<FileChunk> {
      for (const f of files) {
        const hash = createHash('sha256');
        let offset = 0;
        let held: FileChunk | undefined;
        for await (const data of backend.readBlob(f.sha256, size, alloc && ((n) => alloc(n, f.path)))) {
          if (held) yield held;
          hash.update(data);
          held = { path: f.path, offset, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
          offset += data.byteLength;
          if (offset > f.size) break;
        }
        const digest = hash.digest('hex');
        if (offset !== f.size || digest !== f.sha256) {
          throw dataLoss(
            `file ${JSON.stringify(f.path)} of checkpoint ${manifest.id} is corrupt in the store ` +
              `(expected ${f.size} bytes with sha256 ${f.sha256}, read ${offset} bytes hashing to ${digest}); refusing to serve it`,
          );
        }
        if (held) yield held;
      }
    }
    return { manifest, chunks: chunks() };
  }

  /** Checkpoints matching every given filter, oldest first, with the tags on each. */
  async list(filter: ListFilter = {}): Promise<{ checkpoints: CheckpointManifest[]; tags: Map<string, string[]>; prunedIds: string[] }> {
    const tags = await this.backend.readTags();
    const tagsById = new Map<string, string[]>();
    for (const [tag, id] of tags) tagsById.set(id, [...(tagsById.get(id) ?? []), tag].sort());
    const pruned = await this.backend.readPruned();
    let all = await this.all();
    if (!filter.includePruned) all = all.filter((m) => !pruned.has(m.id));
    if (filter.runId) all = all.filter((m) => m.runId === filter.runId);
    if (filter.branch) all = all.filter((m) => m.branch === filter.branch);
    if (filter.stage) all = all.filter((m) => m.stage === filter.stage);
    if (filter.tag) all = all.filter((m) => tags.get(filter.tag!) === m.id);
    const listedTags = new Map<string, string[]>();
    for (const m of all) if (tagsById.has(m.id)) listedTags.set(m.id, tagsById.get(m.id)!);
    return { checkpoints: all, tags: listedTags, prunedIds: all.filter((m) => pruned.has(m.id)).map((m) => m.id) };
  }

  async lineage(ref: string): Promise<Lineage> {
    const m = await this.resolve(ref);
    const graph = new LineageGraph(await this.all());
    const pruned = await this.backend.readPruned();
    const ancestors = graph.ancestors(m.id);
    const descendants = graph.descendants(m.id);
    const prunedIds = [m, ...ancestors, ...descendants].filter((x) => pruned.has(x.id)).map((x) => x.id);
    return { checkpoint: m, ancestors, descendants, branches: graph.forks(m.id), prunedIds };
  }

  /** Points a tag at a checkpoint (moving it if it named another), or removes it. */
  async tag(ref: string, tag: string, remove = false): Promise<CheckpointManifest> {
    checkTag(tag);
    return this.exclusive(async () => {
      const m = remove ? await this.resolve(ref) : await this.resolveLive(ref);
      if (remove) {
        const current = (await this.backend.readTags()).get(tag);
        if (current !== m.id) throw notFound(`tag ${JSON.stringify(tag)} does not point at ${m.id}`);
        await this.backend.writeTag(tag, undefined);
      } else {
        await this.backend.writeTag(tag, m.id);
      }
      return m;
    });
  }

  /**
   * Deletes a checkpoint. Refused when others descend from it or a tag names it, unless
   * forced (its tags go with it; its children keep their parent id). Returns deleted ids.
   */
  async delete(ref: string, force = false): Promise<string[]> {
    return this.exclusive(async () => {
      const m = await this.resolve(ref);
      const children = new LineageGraph(await this.all()).children(m.id);
      const tags = [...(await this.backend.readTags())].filter(([, id]) => id === m.id).map(([t]) => t);
      if (!force && children.length > 0) {
        throw failedPrecondition(
          `checkpoint ${m.id} has ${children.length} descendant checkpoint(s) (${children.map((c) => c.id.slice(0, 12)).join(', ')}); delete those first or force`,
        );
      }
      if (!force && tags.length > 0) throw failedPrecondition(`checkpoint ${m.id} is tagged ${tags.join(', ')}; remove the tags first or force`);
      for (const t of tags) await this.backend.writeTag(t, undefined);
      await this.remove([m.id]);
      return [m.id];
    });
  }

  /** Applies retention to every run and branch now; returns what it deleted. */
  async prune(): Promise<string[]> {
    return this.exclusive(() => this.applyRetention());
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.exclusive(async () => undefined);
    await this.backend.close();
  }

  private async applyRetention(): Promise<string[]> {
    const policy = this.opts.retention;
    if (!policy || policy.keepLast <= 0) return [];
    const tagged = new Set((await this.backend.readTags()).values());
    const ids = pruneCandidates(await this.all(), tagged, policy, await this.backend.readPruned());
    if (ids.length > 0) {
      for (const id of ids) await this.backend.markPruned(id);
      await this.collectBlobs(ids);
      this.opts.log?.info('retention pruned checkpoints', { ids, keepLast: policy.keepLast });
    }
    return ids;
  }

  /** Deletes manifests, then every blob of theirs nothing else refers to. */
  private async remove(ids: string[]): Promise<void> {
    const files = await this.collectableFiles(ids);
    for (const id of ids) {
      await this.backend.deleteManifest(id);
      this.manifests.delete(id);
    }
    await this.deleteUnreferenced(files);
  }

  /** Deletes the blobs of these (just pruned) checkpoints that nothing live refers to. */
  private async collectBlobs(ids: string[]): Promise<void> {
    await this.deleteUnreferenced(await this.collectableFiles(ids));
  }

  private async collectableFiles(ids: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const id of ids) for (const f of (await this.manifest(id))?.files ?? []) out.add(f.sha256);
    return out;
  }

  /** Blobs among `candidates` that no live checkpoint and no upload in progress needs. */
  private async deleteUnreferenced(candidates: Set<string>): Promise<void> {
    const pruned = await this.backend.readPruned();
    const live = new Set(await this.backend.listManifestIds());
    const referenced = await this.uploads.pinnedBlobs();
    for (const m of await this.all()) {
      if (live.has(m.id) && !pruned.has(m.id)) for (const f of m.files) referenced.add(f.sha256);
    }
    for (const sha of candidates) if (!referenced.has(sha)) await this.backend.deleteBlob(sha);
  }

  private async manifest(id: string): Promise<CheckpointManifest | undefined> {
    let m = this.manifests.get(id);
    if (!m) {
      m = await this.backend.getManifest(id);
      if (m) this.manifests.set(id, m);
    }
    return m;
  }

  private async all(): Promise<CheckpointManifest[]> {
    const out: CheckpointManifest[] = [];
    for (const id of await this.backend.listManifestIds()) {
      const m = await this.manifest(id);
      if (m) out.push(m);
    }
    return out.sort(chronological);
  }

  /** Runs `fn` after every other exclusive operation (commits, tags, deletes) is done. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
