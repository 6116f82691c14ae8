// The filesystem backend (the default; a local disk or a PersistentVolume):
//
//   <root>/blobs/ab/abcdef...   file contents by sha256, stored once however many checkpoints share them
//   <root>/manifests/<id>.pb    each checkpoint's manifest (protobuf)
//   <root>/tags/<tag>           the id a tag points at
//   <root>/pruned/<id>          marks a checkpoint whose files retention removed
//   <root>/tmp/                 files being written; renamed into place only when complete
//
// Every write goes to tmp/ first and is renamed into place (rename is atomic on one
// filesystem), so a crash leaves either the old state or the new one, never half a file.
import { CheckpointManifest } from '@temper/proto';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { notFound } from '../errors';
import { Backend } from './backend';

export class FsBackend implements Backend {
  readonly kind = 'fs';
  private readonly blobs: string;
  private readonly manifests: string;
  private readonly tags: string;
  private readonly pruned: string;
  /** Same filesystem as the rest, so renames out of it are atomic. */
  readonly tmp: string;

  private constructor(readonly location: string) {
    this.blobs = path.join(location, 'blobs');
    this.manifests = path.join(location, 'manifests');
    this.tags = path.join(location, 'tags');
    this.pruned = path.join(location, 'pruned');
    this.tmp = path.join(location, 'tmp');
  }

  static async open(root: string): Promise<FsBackend> {
    const b = new FsBackend(path.resolve(root));
    for (const d of [b.blobs, b.manifests, b.tags, b.pruned, b.tmp]) await fsp.mkdir(d, { recursive: true });
    // Leftovers of writes a crash interrupted: never renamed into place, so never visible.
    for (const name of await fsp.readdir(b.tmp)) await fsp.rm(path.join(b.tmp, name), { recursive: true, force: true });
    return b;
  }

  private blobPath(sha256: string): string {
    return path.join(this.blobs, sha256.slice(0, 2), sha256);
  }

  async hasBlob(sha256: string): Promise<boolean> {
    return exists(this.blobPath(sha256));
  }

  async importBlob(sha256: string, localPath: string): Promise<void> {
    const dest = this.blobPath(sha256);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    // On disk before it gets its name: after a power cut a blob is whole or absent.
    await syncFile(localPath);
    // Same content under the same name: replacing an existing blob changes nothing.
    await fsp.rename(localPath, dest);
    await syncFile(path.dirname(dest));
  }

  async *readBlob(sha256: string, chunkSize: number, alloc?: (size: number) => Buffer): AsyncIterable<Uint8Array> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.blobPath(sha256), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`blob ${sha256} is missing from the store`);
      throw err;
    }
    // One read ahead: the disk fetches the next chunk while the consumer handles this one.
    // A new buffer per chunk, since the consumer may still hold the previous one.
    let position = 0;
    const readNext = async () => {
      const buf = alloc ? alloc(chunkSize) : Buffer.allocUnsafe(chunkSize);
      const { bytesRead } = await handle.read(buf, 0, chunkSize, position);
      position += bytesRead;
      return bytesRead === chunkSize ? buf : buf.subarray(0, bytesRead);
    };
    let next: Promise<Buffer> | undefined = readNext();
    try {
      for (;;) {
        const buf = await next;
        next = undefined;
        if (buf.length === 0) return;
        next = readNext();
        yield buf;
      }
    } finally {
      await next?.catch(() => undefined);
      await handle.close();
    }
  }

  async deleteBlob(sha256: string): Promise<void> {
    await fsp.rm(this.blobPath(sha256), { force: true });
  }

  async listBlobs(): Promise<string[]> {
    const out: string[] = [];
    for (const dir of await fsp.readdir(this.blobs)) {
      for (const name of await fsp.readdir(path.join(this.blobs, dir))) out.push(name);
    }
    return out;
  }

  async putManifest(m: CheckpointManifest): Promise<void> {
    await this.writeAtomically(path.join(this.manifests, `${m.id}.pb`), CheckpointManifest.encode(m).finish());
  }

  async getManifest(id: string): Promise<CheckpointManifest | undefined> {
    try {
      return CheckpointManifest.decode(await fsp.readFile(path.join(this.manifests, `${id}.pb`)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async listManifestIds(): Promise<string[]> {
    return (await fsp.readdir(this.manifests)).filter((n) => n.endsWith('.pb')).map((n) => n.slice(0, -3));
  }

  async deleteManifest(id: string): Promise<void> {
    await fsp.rm(path.join(this.manifests, `${id}.pb`), { force: true });
    await fsp.rm(path.join(this.pruned, id), { force: true });
  }

  async readPruned(): Promise<Set<string>> {
    return new Set(await fsp.readdir(this.pruned));
  }

  async markPruned(id: string): Promise<void> {
    await this.writeAtomically(path.join(this.pruned, id), Buffer.alloc(0));
  }

  async readTags(): Promise<Map<string, string>> {
    const tags = new Map<string, string>();
    for (const name of await fsp.readdir(this.tags)) {
      tags.set(name, (await fsp.readFile(path.join(this.tags, name), 'utf8')).trim());
    }
    return tags;
  }

  async writeTag(tag: string, id: string | undefined): Promise<void> {
    const file = path.join(this.tags, tag);
    if (id === undefined) await fsp.rm(file, { force: true });
    else await this.writeAtomically(file, Buffer.from(id + '\n'));
  }

  async close(): Promise<void> {}

  /** A fresh name under tmp/ for a file that will be renamed into place. */
  tempPath(hint: string): string {
    return path.join(this.tmp, `${hint}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  private async writeAtomically(dest: string, data: Uint8Array): Promise<void> {
    const tmp = this.tempPath(path.basename(dest));
    const handle = await fsp.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, dest);
    await syncFile(path.dirname(dest));
  }
}

/** fsync of a file or a directory (a directory's entries: a rename into it). */
async function syncFile(p: string): Promise<void> {
  const handle = await fsp.open(p, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p, fs.constants.F_OK);
    return true;
  } catch {
    return false;
  }
}
