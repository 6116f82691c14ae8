// Uploads in progress. Each upload has a staging folder named by its upload id:
//
//   <staging>/<upload_id>/header.pb   the PutHeader that started it
//   <staging>/<upload_id>/<n>.part    bytes of file n received so far (appended in order)
//
// A file whose bytes are all there is checked against its sha256 and handed to the backend
// as a blob; a mismatch discards it. What arrived survives a dropped connection and a
// restart of the store, so the same upload id continues where it stopped.
//
// Staging is bounded, per upload and in all (StagingQuota). An upload reserves, when it starts,
// the declared sizes of its files the store does not hold yet: no file grows past its declared
// size, so that is the most it can stage. One that would pass either bound is refused with
// RESOURCE_EXHAUSTED before it stages anything; a file leaves the reservation when it is stored.
import { canonicalManifestBytes } from '@temper/checkpoint-client';
import { FileProgress, PutHeader } from '@temper/proto';
import { createHash, Hash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Backend } from './backends/backend';
import { aborted, failedPrecondition, invalidArgument, outOfRange, resourceExhausted } from './errors';
import { checkManifestInput } from './manifest';
import { checkUploadId } from './names';

const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** The most bytes uploads in progress may stage (Infinity: no bound). */
export interface StagingQuota {
  /** One upload (TEMPER_CHECKPOINT_UPLOAD_MAX_GIB). */
  uploadBytes: number;
  /** All uploads in progress together (TEMPER_CHECKPOINT_STAGING_MAX_GIB). */
  totalBytes: number;
}

export const UNBOUNDED: StagingQuota = { uploadBytes: Infinity, totalBytes: Infinity };

interface StagedFile {
  index: number;
  path: string;
  size: number;
  sha256: string;
  received: number;
  complete: boolean;
  /** Running hash of the received bytes, kept while the server is up. */
  hash?: Hash;
  handle?: fsp.FileHandle;
  /** The write of the latest chunk (at most one in flight; `received` counts it already). */
  writing?: Promise<unknown>;
  /** The backend taking the verified file. */
  importing?: Promise<void>;
}

export class Upload {
  private busy = false;
  private readonly byPath = new Map<string, StagedFile>();
  /** When a stream last touched it (for expiry of abandoned uploads). */
  touched = Date.now();

  constructor(
    readonly id: string,
    readonly header: PutHeader,
    private readonly dir: string,
    private readonly backend: Backend,
    files: StagedFile[],
  ) {
    for (const f of files) this.byPath.set(f.path, f);
  }

  get files(): StagedFile[] {
    return [...this.byPath.values()];
  }

  progress(): FileProgress[] {
    return this.files.map((f) => ({ path: f.path, received: f.received, complete: f.complete }));
  }

  incomplete(): StagedFile[] {
    return this.files.filter((f) => !f.complete);
  }

  /** Staging bytes this upload may still use: the declared sizes of its files not stored yet. */
  reservedBytes(): number {
    return this.incomplete().reduce((n, f) => n + f.size, 0);
  }

  /** One stream at a time writes an upload. */
  acquire(): void {
    if (this.busy) throw aborted(`upload ${this.id} is being written by another stream; retry when it ends`);
    this.busy = true;
    this.touched = Date.now();
  }

  get inUse(): boolean {
    return this.busy;
  }

  /**
   * Ends a stream's hold. What is on disk is the truth from here on: an interrupted write
   * may have landed partly, so the next stream re-reads each unfinished file's length and
   * re-hashes it rather than trusting counters kept in memory.
   */
  async release(): Promise<void> {
    try {
      await this.settle();
    } catch {
      // Files the store could not take were reset; the next stream sends them again.
    } finally {
      this.busy = false;
      this.touched = Date.now();
    }
  }

  /** Closes open files and re-reads what is on disk, keeping the stream's hold (before a commit). */
  async settle(): Promise<void> {
    const failures: string[] = [];
    for (const f of this.files) {
      await f.importing?.catch((err: Error) => failures.push(`${f.path}: ${err.message}`));
    }
    for (const f of this.files) {
      await this.closeFile(f).catch((err: Error) => failures.push(`${f.path}: ${err.message}`));
      if (!f.complete) {
        f.hash = undefined;
        f.received = await fsp.stat(this.partPath(f)).then((s) => Math.min(s.size, f.size), () => 0);
      }
    }
    if (failures.length > 0) throw new Error(`could not store ${failures.join('; ')} (send them again)`);
  }

  async writeChunk(chunk: { path: string; offset: number; data: Uint8Array }): Promise<void> {
    const f = this.byPath.get(chunk.path);
    if (!f) throw invalidArgument(`chunk.path ${JSON.stringify(chunk.path)} is not a file of upload ${this.id}`);
    const end = chunk.offset + chunk.data.length;
    if (end > f.size) throw invalidArgument(`chunk for ${JSON.stringify(f.path)} ends at byte ${end}, past its size ${f.size}`);
    if (f.complete || end <= f.received) return; // already have these bytes (a resend)
    if (chunk.offset > f.received) {
      throw outOfRange(`chunk for ${JSON.stringify(f.path)} starts at byte ${chunk.offset} but only ${f.received} have arrived; resume from ${f.received}`);
    }
    const data = chunk.data.subarray(f.received - chunk.offset);
    if (!f.handle) {
      f.hash ??= await hashPrefix(this.partPath(f), f.received);
      f.handle = await fsp.open(this.partPath(f), 'a');
    }
    // The disk takes this chunk while the next one is received and hashed: wait only for the
    // previous write, so receiving, hashing and writing overlap (writes run off the JavaScript
    // thread). What is on disk stays the truth for a resume (settle re-reads it).
    await f.writing;
    f.writing = writeAll(f.handle, data, this.partPath(f));
    f.writing.catch(() => undefined); // its error surfaces at the next chunk or the close
    f.hash!.update(data);
    f.received += data.length;
    if (f.received === f.size) await this.finishFile(f);
  }

  private async finishFile(f: StagedFile): Promise<void> {
    await this.closeFile(f);
    const digest = f.hash!.digest('hex');
    f.hash = undefined;
    if (digest !== f.sha256) {
      await fsp.rm(this.partPath(f), { force: true });
      f.received = 0;
      throw invalidArgument(
        `file ${JSON.stringify(f.path)} hashes to ${digest}, not the sha256 ${f.sha256} its header declared; its bytes were discarded`,
      );
    }
    // The store takes the file (for the filesystem: fsync, rename) while the next file streams
    // in; settle() waits for it, so a commit never runs ahead of its files being durable.
    f.importing = this.backend.importBlob(f.sha256, this.partPath(f)).then(
      () => {
        f.complete = true;
        f.importing = undefined;
      },
      async (err: unknown) => {
        f.importing = undefined;
        f.received = 0;
        await fsp.rm(this.partPath(f), { force: true });
        throw err;
      },
    );
    f.importing.catch(() => undefined); // reported by settle()
  }

  /** Closes a file once its last write has landed; a failed write throws. */
  private async closeFile(f: StagedFile): Promise<void> {
    const { handle, writing } = f;
    f.handle = undefined;
    f.writing = undefined;
    try {
      await writing;
    } finally {
      await handle?.close();
    }
  }

  private partPath(f: StagedFile): string {
    return path.join(this.dir, `${f.index}.part`);
  }
}

export class Uploads {
  private readonly active = new Map<string, Upload>();
  /** Reservations of uploads being started (not yet in `active`). */
  private readonly starting = new Map<string, number>();

  constructor(
    private readonly stagingDir: string,
    private readonly backend: Backend,
    private readonly quota: StagingQuota = UNBOUNDED,
  ) {}

  /**
   * Opens the uploads a previous run of the store left, so the quota counts them; one that
   * needs more than an upload may stage now (the bound was lowered) is removed. Returns the
   * ids removed, and those whose staging could not be read (left for the expiry sweep).
   */
  async init(): Promise<{ removed: string[]; unreadable: { id: string; err: unknown }[] }> {
    await fsp.mkdir(this.stagingDir, { recursive: true });
    const removed: string[] = [];
    const unreadable: { id: string; err: unknown }[] = [];
    for (const id of await fsp.readdir(this.stagingDir)) {
      let upload: Upload | undefined;
      try {
        upload = await this.find(id);
      } catch (err) {
        unreadable.push({ id, err });
        continue;
      }
      if (upload && upload.reservedBytes() > this.quota.uploadBytes) {
        await this.remove(upload);
        removed.push(id);
      }
    }
    return { removed, unreadable };
  }

  /** Staging bytes reserved by every upload in progress. */
  reservedBytes(): number {
    let n = 0;
    for (const u of this.active.values()) n += u.reservedBytes();
    for (const bytes of this.starting.values()) n += bytes;
    return n;
  }

  /**
   * Reserves staging for a new upload, or refuses it with RESOURCE_EXHAUSTED. Synchronous
   * from the check to the reservation, so uploads starting at once cannot both pass.
   */
  private reserve(uploadId: string, bytes: number): void {
    const { uploadBytes, totalBytes } = this.quota;
    if (bytes > uploadBytes) {
      throw resourceExhausted(`upload ${uploadId} would stage ${bytes} bytes, more than the ${uploadBytes} one upload may (TEMPER_CHECKPOINT_UPLOAD_MAX_GIB)`);
    }
    const reserved = this.reservedBytes();
    if (reserved + bytes > totalBytes) {
      throw resourceExhausted(
        `upload ${uploadId} would stage ${bytes} bytes, but uploads in progress hold ${reserved} of the ${totalBytes} all may (TEMPER_CHECKPOINT_STAGING_MAX_GIB); retry when some finish`,
      );
    }
    this.starting.set(uploadId, bytes);
  }

  private readonly pending = new Map<string, Promise<unknown>>();

  /**
   * Runs `fn` when no other start or lookup of this upload id is under way, so concurrent
   * calls (StartUpload racing PutCheckpoint, a status query during either) see one Upload.
   */
  private async oneAtATime<T>(uploadId: string, fn: () => Promise<T>): Promise<T> {
    for (let p = this.pending.get(uploadId); p; p = this.pending.get(uploadId)) await p.catch(() => undefined);
    const run = fn();
    this.pending.set(uploadId, run);
    try {
      return await run;
    } finally {
      if (this.pending.get(uploadId) === run) this.pending.delete(uploadId);
    }
  }

  /** Starts an upload, or finds the one with this id (which must have the same header). */
  async start(header: PutHeader): Promise<Upload> {
    checkUploadId(header.uploadId);
    checkManifestInput(header.manifest);
    return this.oneAtATime(header.uploadId, () => this.startOne(header));
  }

  private async startOne(header: PutHeader): Promise<Upload> {
    const known = this.active.get(header.uploadId) ?? (await this.load(header.uploadId));
    if (known) {
      if (!sameHeader(known.header, header)) {
        throw failedPrecondition(`upload ${header.uploadId} was started with a different header; use a new upload_id for different content`);
      }
      await this.refresh(known);
      return known;
    }
    let toReceive = 0;
    for (const f of header.manifest!.files) if (!(await this.backend.hasBlob(f.sha256))) toReceive += f.size;
    this.reserve(header.uploadId, toReceive);
    const dir = this.dirOf(header.uploadId);
    try {
      await fsp.mkdir(dir, { recursive: true });
      const tmp = path.join(dir, 'header.pb.tmp');
      await fsp.writeFile(tmp, PutHeader.encode(header).finish());
      await fsp.rename(tmp, path.join(dir, 'header.pb'));
      const upload = new Upload(header.uploadId, header, dir, this.backend, await this.stagedFiles(header, dir));
      this.active.set(upload.id, upload);
      return upload;
    } catch (err) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw err;
    } finally {
      this.starting.delete(header.uploadId);
    }
  }

  async find(uploadId: string): Promise<Upload | undefined> {
    checkUploadId(uploadId);
    return this.active.get(uploadId) ?? this.oneAtATime(uploadId, async () => this.active.get(uploadId) ?? (await this.load(uploadId)));
  }

  async remove(upload: Upload): Promise<void> {
    this.active.delete(upload.id);
    await fsp.rm(this.dirOf(upload.id), { recursive: true, force: true });
  }

  /** Content hashes every unfinished upload refers to: blobs garbage collection must keep. */
  async pinnedBlobs(): Promise<Set<string>> {
    const pinned = new Set<string>();
    for (const id of await fsp.readdir(this.stagingDir)) {
      const upload = await this.find(id).catch(() => undefined);
      for (const f of upload?.header.manifest?.files ?? []) pinned.add(f.sha256);
    }
    return pinned;
  }

  /** Removes uploads no stream has touched for maxAgeMs. */
  async expire(maxAgeMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await fsp.readdir(this.stagingDir)) {
      const upload = this.active.get(id);
      if (upload?.inUse) continue;
      const touched = upload?.touched ?? (await fsp.stat(this.dirOf(id))).mtimeMs;
      if (Date.now() - touched > maxAgeMs) {
        this.active.delete(id);
        await fsp.rm(this.dirOf(id), { recursive: true, force: true });
        removed.push(id);
      }
    }
    return removed;
  }

  private dirOf(uploadId: string): string {
    return path.join(this.stagingDir, uploadId);
  }

  private async load(uploadId: string): Promise<Upload | undefined> {
    const dir = this.dirOf(uploadId);
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(path.join(dir, 'header.pb'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const header = PutHeader.decode(bytes);
    const upload = new Upload(uploadId, header, dir, this.backend, await this.stagedFiles(header, dir));
    this.active.set(uploadId, upload);
    return upload;
  }

  /** Re-reads what is already stored, e.g. a blob another upload finished meanwhile. */
  private async refresh(upload: Upload): Promise<void> {
    for (const f of upload.files) {
      if (!f.complete && (await this.backend.hasBlob(f.sha256))) {
        f.complete = true;
        f.received = f.size;
      }
    }
  }

  private async stagedFiles(header: PutHeader, dir: string): Promise<StagedFile[]> {
    const files: StagedFile[] = [];
    for (const [index, f] of header.manifest!.files.entries()) {
      const staged: StagedFile = { index, path: f.path, size: f.size, sha256: f.sha256, received: 0, complete: false };
      if (await this.backend.hasBlob(f.sha256)) {
        staged.received = f.size;
        staged.complete = true;
      } else if (f.size === 0) {
        if (f.sha256 !== EMPTY_SHA256) throw invalidArgument(`file ${JSON.stringify(f.path)} is empty but its sha256 is not that of no bytes`);
        const part = path.join(dir, `${index}.part`);
        await fsp.writeFile(part, '');
        await this.backend.importBlob(f.sha256, part);
        staged.complete = true;
      } else {
        const part = path.join(dir, `${index}.part`);
        const size = await fsp.stat(part).then((s) => s.size, () => 0);
        if (size === f.size && (await hashPrefix(part, size)).digest('hex') === f.sha256) {
          // Every byte arrived and checks out, but the store stopped before taking the file.
          await this.backend.importBlob(f.sha256, part);
          staged.received = size;
          staged.complete = true;
        } else if (size >= f.size) {
          await fsp.rm(part, { force: true });
        } else {
          staged.received = size;
        }
      }
      files.push(staged);
    }
    return files;
  }
}

function sameHeader(a: PutHeader, b: PutHeader): boolean {
  return a.policyVersion === b.policyVersion && canonicalManifestBytes(a.manifest!).equals(canonicalManifestBytes(b.manifest!));
}

/** Appends all of `data`; a short write (a full disk) is an error. */
async function writeAll(handle: fsp.FileHandle, data: Uint8Array, file: string): Promise<void> {
  const { bytesWritten } = await handle.write(data, 0, data.length);
  if (bytesWritten !== data.length) throw new Error(`${file}: wrote ${bytesWritten} of ${data.length} bytes (is the disk full?)`);
}

/** The running hash of the first `bytes` bytes of a partly received file. */
async function hashPrefix(file: string, bytes: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (bytes === 0) return hash;
  const handle = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    let pos = 0;
    while (pos < bytes) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash;
}
