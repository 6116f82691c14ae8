// The NATS JetStream Object Store backend, for clusters whose NATS already keeps
// replicated storage. Two buckets:
//
//   <prefix>-blobs   file contents, object name = sha256
//   <prefix>-meta    "manifest/<id>" (protobuf), "tag/<tag>" (the id it points at) and
//                    "pruned/<id>" (a checkpoint whose files retention removed)
//
// An object becomes visible only when its last chunk and its metadata are stored, so an
// interrupted put leaves nothing a reader could see.
import { NatsConnection } from '@nats-io/transport-node';
import { ObjectStore, Objm, StorageType } from '@nats-io/obj';
import { CheckpointManifest } from '@temper/proto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import { dataLoss, notFound } from '../errors';
import { Backend } from './backend';

export interface ObjectStoreBackendOptions {
  /** Bucket names start with this (default "temper-checkpoints"). */
  bucketPrefix?: string;
  /** JetStream replicas for both buckets (default 1). */
  replicas?: number;
  /** Bytes per stored chunk (default 256 KiB; capped by the server's max_payload). */
  chunkBytes?: number;
}

const MANIFEST = 'manifest/';
const TAG = 'tag/';
const PRUNED = 'pruned/';

export class ObjectStoreBackend implements Backend {
  readonly kind = 'nats';

  private constructor(
    readonly location: string,
    private readonly blobs: ObjectStore,
    private readonly meta: ObjectStore,
    private readonly chunkBytes: number,
  ) {}

  static async open(nc: NatsConnection, opts: ObjectStoreBackendOptions = {}): Promise<ObjectStoreBackend> {
    const prefix = opts.bucketPrefix ?? 'temper-checkpoints';
    const objm = new Objm(nc);
    const config = { storage: StorageType.File, replicas: opts.replicas ?? 1 };
    const blobs = await objm.create(`${prefix}-blobs`, { ...config, description: 'Temper checkpoint files by sha256' });
    const meta = await objm.create(`${prefix}-meta`, { ...config, description: 'Temper checkpoint manifests and tags' });
    return new ObjectStoreBackend(`nats object store ${prefix}-{blobs,meta}`, blobs, meta, opts.chunkBytes ?? 256 * 1024);
  }

  async hasBlob(sha256: string): Promise<boolean> {
    const info = await this.blobs.info(sha256);
    return info !== null && !info.deleted;
  }

  async importBlob(sha256: string, localPath: string): Promise<void> {
    try {
      const { size } = await fsp.stat(localPath);
      const existing = await this.blobs.info(sha256);
      if (!existing || existing.deleted || existing.size !== size) {
        const stream = Readable.toWeb(fs.createReadStream(localPath, { highWaterMark: this.chunkBytes })) as ReadableStream<Uint8Array>;
        await this.blobs.put({ name: sha256, options: { max_chunk_size: this.chunkBytes } }, stream);
      }
    } finally {
      await fsp.rm(localPath, { force: true });
    }
  }

  async *readBlob(sha256: string, chunkSize: number): AsyncIterable<Uint8Array> {
    const result = await this.blobs.get(sha256);
    if (!result) throw notFound(`blob ${sha256} is missing from the store`);
    const reader = result.data.getReader();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read().catch((err: Error) => {
          // The object store checks its own digest of the chunks it sends.
          if (/digest/i.test(err.message)) throw dataLoss(`blob ${sha256} is corrupt in the object store: ${err.message}`);
          throw err;
        });
        if (done) break;
        pending.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        pendingBytes += value.byteLength;
        if (pendingBytes >= chunkSize) {
          yield Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  async deleteBlob(sha256: string): Promise<void> {
    if (await this.hasBlob(sha256)) await this.blobs.delete(sha256);
  }

  async listBlobs(): Promise<string[]> {
    return (await this.blobs.list()).filter((i) => !i.deleted).map((i) => i.name);
  }

  async putManifest(m: CheckpointManifest): Promise<void> {
    await this.meta.putBlob({ name: MANIFEST + m.id }, CheckpointManifest.encode(m).finish());
  }

  async getManifest(id: string): Promise<CheckpointManifest | undefined> {
    const data = await this.meta.getBlob(MANIFEST + id);
    return data ? CheckpointManifest.decode(data) : undefined;
  }

  async listManifestIds(): Promise<string[]> {
    return (await this.meta.list())
      .filter((i) => !i.deleted && i.name.startsWith(MANIFEST))
      .map((i) => i.name.slice(MANIFEST.length));
  }

  async deleteManifest(id: string): Promise<void> {
    for (const name of [MANIFEST + id, PRUNED + id]) {
      const info = await this.meta.info(name);
      if (info && !info.deleted) await this.meta.delete(name);
    }
  }

  async readPruned(): Promise<Set<string>> {
    return new Set(
      (await this.meta.list()).filter((i) => !i.deleted && i.name.startsWith(PRUNED)).map((i) => i.name.slice(PRUNED.length)),
    );
  }

  async markPruned(id: string): Promise<void> {
    await this.meta.putBlob({ name: PRUNED + id }, new Uint8Array(0));
  }

  async readTags(): Promise<Map<string, string>> {
    const tags = new Map<string, string>();
    for (const info of await this.meta.list()) {
      if (info.deleted || !info.name.startsWith(TAG)) continue;
      const data = await this.meta.getBlob(info.name);
      if (data) tags.set(info.name.slice(TAG.length), Buffer.from(data).toString('utf8').trim());
    }
    return tags;
  }

  async writeTag(tag: string, id: string | undefined): Promise<void> {
    if (id !== undefined) {
      await this.meta.putBlob({ name: TAG + tag }, Buffer.from(id));
      return;
    }
    const info = await this.meta.info(TAG + tag);
    if (info && !info.deleted) await this.meta.delete(TAG + tag);
  }

  async close(): Promise<void> {}
}
