// The checkpoint store's client, for the learner, the generators and the CLI: push a model
// directory as a checkpoint, pull one into a directory, list, lineage, tag, delete. Nothing
// of the store's server (backends, GC, retention) comes with it. Files stream in chunks both
// ways; a push resumes what an interrupted one left, and a pull verifies every file's sha256
// before any of them appears in the target directory.
import * as grpc from '@grpc/grpc-js';
import {
  CheckpointFile,
  CheckpointManifest,
  CheckpointStoreClient,
  FileProgress,
  GetCheckpointResponse,
  GetLineageResponse,
  ListCheckpointsRequest,
  ListCheckpointsResponse,
  PutCheckpointRequest,
  PutCheckpointResponse,
  PutHeader,
} from '@temper/proto';
import { addressEnvVar, ClientAuthOptions, defaultPorts, grpcClientSetup } from '@temper/service';
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { describeDir, PULL_TEMP_PREFIX, summarizeModelDir } from './files';
import { canonicalManifestBytes, filePathProblem, ManifestFields } from './manifest';
import { allocChunkData, checkpointStoreDefinition, DEFAULT_CHUNK_BYTES, FLOW_CONTROL_WINDOW, releaseChunkData } from './wire';

/** Which checkpoints list() returns (all given fields must match). */
export interface ListFilter {
  runId?: string;
  branch?: string;
  tag?: string;
  stage?: string;
  includePruned?: boolean;
}

export interface PushOptions {
  /** Default: derived from the content, so pushing the same directory again resumes. */
  uploadId?: string;
  /** Announced with CheckpointCommitted when the checkpoint is a policy to serve. */
  policyVersion?: number;
  /** Bytes per chunk (default DEFAULT_CHUNK_BYTES, 4 MiB). */
  chunkBytes?: number;
  /** Tries after a dropped connection before giving up (default 5). */
  retries?: number;
  /**
   * sha256 by path of files the caller wrote itself from bytes it had hashed: not hashed
   * again (the store still checks every byte it receives).
   */
  knownSha256?: Record<string, string>;
}

export interface PushResult {
  manifest: CheckpointManifest;
  /** False when the store had this checkpoint already. */
  created: boolean;
  uploadId: string;
  /** File bytes actually sent (files the store had, or had in part, are skipped). */
  bytesSent: number;
}

export interface PullOptions {
  /** Only these files (default all). */
  paths?: string[];
  chunkBytes?: number;
  /** Tries after a dropped connection before giving up (default 5); completed files are kept. */
  retries?: number;
}

export class CheckpointClientError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'CheckpointClientError';
  }
}

const MAX_MESSAGE_BYTES = 64 << 20;
/** A download starts over (for the files not yet complete) after these. */
const PULL_RETRIABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL]);
/** Calls that read, retried while the store is UNAVAILABLE: about 35 s of tries. */
const READS = new Set(['getUploadStatus', 'listCheckpoints', 'getLineage']);
const READ_RETRIES = 20;
const RETRIABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.ABORTED, grpc.status.CANCELLED, grpc.status.DEADLINE_EXCEEDED, grpc.status.OUT_OF_RANGE, grpc.status.INTERNAL]);

/** Where the store is: the given endpoint, else TEMPER_CHECKPOINT_STORE_ADDR, else the local default. */
export function checkpointStoreAddress(endpoint?: string): string {
  return endpoint || process.env[addressEnvVar('checkpoint-store')] || `127.0.0.1:${defaultPorts['checkpoint-store']}`;
}

/**
 * The manifest pushDir uploads for `dir`: its files with sizes and hashes, the caller's
 * fields, and (unless given) a model summary from config.json and the safetensors headers.
 */
export async function manifestForDir(dir: string, fields: ManifestFields = {}, knownSha256: Record<string, string> = {}): Promise<CheckpointManifest> {
  const files = await describeDir(dir, knownSha256);
  if (files.length === 0) throw new Error(`${dir} has no files to push`);
  const model = fields.model ?? (await summarizeModelDir(dir, files.map((f) => f.path)));
  return CheckpointManifest.fromPartial({ ...fields, model, id: '', files, createdAt: undefined });
}

export class CheckpointClient {
  readonly raw: CheckpointStoreClient;

  /** `auth`: TLS and bearer token (default: from the environment, TEMPER_TLS_* and TEMPER_AUTH_TOKEN). */
  constructor(readonly address: string = checkpointStoreAddress(), auth: ClientAuthOptions = {}) {
    const Client = grpc.makeGenericClientConstructor(checkpointStoreDefinition, 'temper.v1.CheckpointStore') as unknown as typeof CheckpointStoreClient;
    // The caller's trace continues in the store (traceparent in the call metadata).
    const { credentials, options } = grpcClientSetup(address, auth, {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // Downloads would otherwise wait for a window update every 64 KiB.
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
    });
    this.raw = new Client(address, credentials, options);
  }

  close(): void {
    this.raw.close();
  }

  /** Uploads every file under `dir` as one checkpoint and commits it. */
  async pushDir(dir: string, fields: ManifestFields = {}, opts: PushOptions = {}): Promise<PushResult> {
    return this.put(await manifestForDir(dir, fields, opts.knownSha256), dir, opts);
  }

  /**
   * Announces a checkpoint the store holds as policy `policyVersion` of its run: its manifest
   * is committed again under that version (no file bytes move) and the store publishes
   * CheckpointCommitted, as for any commit that names a version. Only the store announces
   * commits; a learner that resumes from a checkpoint announces it this way. FAILED_PRECONDITION
   * when the store no longer has all of its files.
   */
  async announce(manifest: CheckpointManifest, policyVersion: number, opts: Pick<PushOptions, 'retries'> = {}): Promise<CheckpointManifest> {
    if (!Number.isSafeInteger(policyVersion) || policyVersion < 1) throw new Error(`announce: policyVersion must be a whole number >= 1, got ${policyVersion}`);
    const input = CheckpointManifest.fromPartial({ ...manifest, id: '', createdAt: undefined });
    const { manifest: committed } = await this.put(input, undefined, { ...opts, policyVersion });
    return committed;
  }

  /** One checkpoint into the store: the files under `dir` it lacks (none without a dir), then the commit. */
  private async put(manifest: CheckpointManifest, dir: string | undefined, opts: PushOptions): Promise<PushResult> {
    const policyVersion = opts.policyVersion ?? 0;
    let uploadId = opts.uploadId ?? contentUploadId(manifest, policyVersion);
    let bytesSent = 0;
    const retries = opts.retries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const header = PutHeader.fromPartial({ uploadId, manifest, policyVersion });
      try {
        const { files: progress } = await this.call<{ files: FileProgress[] }>('startUpload', { header });
        const lacking = progress.filter((f) => !f.complete);
        if (dir === undefined && lacking.length > 0) {
          throw new CheckpointClientError(grpc.status.FAILED_PRECONDITION, `the store no longer holds ${lacking.map((f) => f.path).join(', ')} of this checkpoint`);
        }
        const res = await this.upload(dir, header, progress, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, (n) => (bytesSent += n));
        return { manifest: res.manifest!, created: res.created, uploadId, bytesSent };
      } catch (err) {
        const code = (err as CheckpointClientError).code;
        if (attempt >= retries || !RETRIABLE.has(code)) throw err;
        // Another stream holds this upload (the same content pushed concurrently): use our own.
        if (code === grpc.status.ABORTED && !opts.uploadId) uploadId = `${contentUploadId(manifest, policyVersion)}-${randomBytes(4).toString('hex')}`;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  /**
   * Downloads a checkpoint (id, id prefix or tag) into `dir`. Files land in a temporary
   * folder inside `dir`, are checked against their sha256, and are moved into place only
   * when all of them are good; on any error nothing new appears in `dir`.
   */
  async pullDir(ref: string, dir: string, opts: PullOptions = {}): Promise<{ manifest: CheckpointManifest; bytes: number }> {
    await fsp.mkdir(dir, { recursive: true });
    const tmp = await fsp.mkdtemp(path.join(dir, PULL_TEMP_PREFIX));
    const writer = new PullWriter(tmp);
    const retries = opts.retries ?? 5;
    try {
      let manifest: CheckpointManifest | undefined;
      for (let attempt = 0; ; attempt++) {
        // After a dropped stream: the same checkpoint (a tag may have moved), only what is missing.
        const paths = manifest ? writer.remaining() : (opts.paths ?? []);
        if (manifest && paths.length === 0) break;
        const stream = this.raw.getCheckpoint({ checkpoint: manifest?.id ?? ref, paths, chunkSize: opts.chunkBytes ?? DEFAULT_CHUNK_BYTES });
        try {
          for await (const res of stream as AsyncIterable<GetCheckpointResponse>) {
            if (res.part?.$case === 'manifest') {
              if (!manifest) {
                manifest = res.part.value;
                writer.expect(opts.paths?.length ? manifest.files.filter((f) => opts.paths!.includes(f.path)) : manifest.files);
              }
            } else if (res.part?.$case === 'chunk') {
              if (!manifest) throw new Error('the store sent file data before the manifest');
              await writer.write(res.part.value);
            }
          }
          break;
        } catch (err) {
          stream.cancel();
          const e = clientError(err);
          const code = (e as CheckpointClientError).code;
          if (attempt >= retries || !PULL_RETRIABLE.has(code)) throw e;
          await writer.restartIncomplete();
          await sleep(Math.min(4000, 250 * 2 ** attempt));
        }
      }
      if (!manifest) throw new Error(`the store sent no manifest for ${ref}`);
      const bytes = await writer.finish();
      await writer.moveInto(dir);
      return { manifest, bytes };
    } finally {
      await writer.abort();
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  async list(filter: ListFilter = {}): Promise<{ checkpoints: CheckpointManifest[]; tags: Record<string, string[]>; prunedIds: string[] }> {
    const res = await this.call<ListCheckpointsResponse>('listCheckpoints', ListCheckpointsRequest.fromPartial(filter));
    return {
      checkpoints: res.checkpoints,
      tags: Object.fromEntries(Object.entries(res.tags).map(([id, t]) => [id, t.tags])),
      prunedIds: res.prunedIds,
    };
  }

  lineage(ref: string): Promise<GetLineageResponse> {
    return this.call('getLineage', { checkpoint: ref });
  }

  /** The checkpoint a reference names now: an id, a unique id prefix or a tag (NOT_FOUND when none). */
  async resolve(ref: string): Promise<CheckpointManifest> {
    return (await this.lineage(ref)).checkpoint!;
  }

  async tag(ref: string, tag: string, remove = false): Promise<CheckpointManifest> {
    return (await this.call<{ manifest: CheckpointManifest }>('tagCheckpoint', { checkpoint: ref, tag, remove })).manifest;
  }

  async delete(ref: string, force = false): Promise<string[]> {
    return (await this.call<{ deletedIds: string[] }>('deleteCheckpoint', { checkpoint: ref, force })).deletedIds;
  }

  /** What the store holds of an upload, and whether a stream is writing it now. */
  uploadStatus(uploadId: string): Promise<{ files: FileProgress[]; active: boolean }> {
    return this.call('getUploadStatus', { uploadId });
  }

  /** One PutCheckpoint stream: the header, the bytes the store lacks (read from `dir`, given when it lacks any), the commit. */
  private upload(dir: string | undefined, header: PutHeader, progress: FileProgress[], chunkBytes: number, sent: (n: number) => void): Promise<PutCheckpointResponse> {
    return new Promise<PutCheckpointResponse>((resolve, reject) => {
      const call = this.raw.putCheckpoint((err, res) => (err ? reject(clientError(err)) : resolve(res)));
      const have = new Map(progress.map((p) => [p.path, p]));
      const send = async () => {
        await writeMessage(call, { part: { $case: 'header', value: header } });
        for (const f of header.manifest!.files) {
          const p = have.get(f.path);
          if (p?.complete) continue;
          const start = p?.received ?? 0;
          if (start >= f.size && f.size > 0) continue;
          const handle = await fsp.open(path.join(dir!, ...f.path.split('/')), 'r');
          // One read ahead, so the disk works while the previous chunk is being sent.
          const read = async (offset: number) => {
            const buf = allocChunkData(Math.min(chunkBytes, f.size - offset), f.path);
            const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
            if (bytesRead === 0) throw new Error(`${f.path} is shorter than when it was hashed (${offset} of ${f.size} bytes)`);
            return buf.subarray(0, bytesRead);
          };
          let next: Promise<Buffer> | undefined = start < f.size ? read(start) : undefined;
          try {
            for (let offset = start; next; ) {
              const data = await next;
              next = offset + data.length < f.size ? read(offset + data.length) : undefined;
              await writeMessage(call, { part: { $case: 'chunk', value: { path: f.path, offset, data } } }, () => releaseChunkData(data));
              offset += data.length;
              sent(data.length);
            }
          } finally {
            await next?.catch(() => undefined);
            await handle.close();
          }
        }
        await writeMessage(call, { part: { $case: 'commit', value: {} } });
        call.end();
      };
      send().catch((err) => {
        // The server's status (via the callback) says more than a local write error.
        call.cancel();
        setTimeout(() => reject(clientError(err)), 50);
      });
    });
  }

  private async call<Res>(method: 'startUpload' | 'getUploadStatus' | 'listCheckpoints' | 'getLineage' | 'tagCheckpoint' | 'deleteCheckpoint', req: unknown): Promise<Res> {
    const once = () =>
      new Promise<Res>((resolve, reject) => {
        const fn = this.raw[method] as unknown as (req: unknown, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
        fn.call(this.raw, req, (err, res) => (err ? reject(clientError(err)) : resolve(res)));
      });
    // Reads wait out a store that is away (restarting): a learner resuming a run reads its
    // lineage and checkpoints, and the chaos run failed a run on a store killed just then.
    // Uploads retry in put(); a delete repeated after it succeeded would answer NOT_FOUND.
    const retries = READS.has(method) ? READ_RETRIES : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await once();
      } catch (err) {
        if (attempt >= retries || (err as CheckpointClientError).code !== grpc.status.UNAVAILABLE) throw err;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }
}

/**
 * Writes an incoming checkpoint into a temporary folder, hashing as it goes. A file is
 * checked as soon as its last byte arrives; after a dropped stream, the files not yet
 * complete start over and only they are asked for again.
 */
class PullWriter {
  private files = new Map<string, CheckpointFile>();
  private state = new Map<string, { bytes: number; hash: ReturnType<typeof createHash>; done: boolean }>();
  /** The file being written, with the write of its latest chunk (at most one in flight). */
  private current?: { path: string; handle: fsp.FileHandle; writing?: Promise<unknown> };

  constructor(private readonly tmp: string) {}

  expect(files: CheckpointFile[]): void {
    for (const f of files) {
      const problem = filePathProblem(f.path);
      if (problem) throw new CheckpointClientError(grpc.status.INVALID_ARGUMENT, `the store named a file ${JSON.stringify(f.path)}, which ${problem}; refusing to write it`);
      this.files.set(f.path, f);
      this.state.set(f.path, { bytes: 0, hash: createHash('sha256'), done: false });
    }
  }

  /** Files not yet received and checked (empty files count as received). */
  remaining(): string[] {
    return [...this.files.values()].filter((f) => f.size > 0 && !this.state.get(f.path)!.done).map((f) => f.path);
  }

  async write(chunk: { path: string; offset: number; data: Buffer }): Promise<void> {
    const state = this.state.get(chunk.path);
    const f = this.files.get(chunk.path);
    if (!state || !f) throw new Error(`the store sent bytes of ${JSON.stringify(chunk.path)}, which the manifest does not list`);
    if (state.done || chunk.offset !== state.bytes) throw new Error(`the store sent ${chunk.path} at offset ${chunk.offset}, expected ${state.bytes}`);
    if (chunk.offset + chunk.data.length > f.size) throw new CheckpointClientError(grpc.status.DATA_LOSS, `${f.path}: the store sent more than its ${f.size} bytes`);
    if (this.current?.path !== chunk.path) {
      await this.closeCurrent();
      this.current = { path: chunk.path, handle: await this.open(chunk.path) };
    }
    // The disk takes this chunk while the next one is received and hashed: wait only for the
    // previous write, so receiving, hashing and writing overlap (writes run off the JavaScript thread).
    const current = this.current;
    await current.writing;
    current.writing = writeAll(current.handle, chunk.data, `${this.tmp}/${f.path}`);
    current.writing.catch(() => undefined); // its error surfaces at the next write or the close
    state.hash.update(chunk.data);
    state.bytes += chunk.data.length;
    if (state.bytes === f.size) {
      await this.closeCurrent();
      this.check(f, state.hash.digest('hex'), state.bytes);
      state.done = true;
    }
  }

  /** Forgets partly received files, which the next stream sends again from their start. */
  async restartIncomplete(): Promise<void> {
    await this.abort();
    for (const state of this.state.values()) {
      if (!state.done) Object.assign(state, { bytes: 0, hash: createHash('sha256') });
    }
  }

  /** Every file received and checked (empty ones created); the total bytes. */
  async finish(): Promise<number> {
    await this.abort();
    let total = 0;
    for (const [p, f] of this.files) {
      const state = this.state.get(p)!;
      if (f.size === 0 && !state.done) {
        await (await this.open(p)).close();
        this.check(f, state.hash.digest('hex'), 0);
        state.done = true;
      }
      if (!state.done) throw new CheckpointClientError(grpc.status.DATA_LOSS, `${p}: the stream ended after ${state.bytes} of its ${f.size} bytes`);
      total += f.size;
    }
    return total;
  }

  async moveInto(dir: string): Promise<void> {
    for (const p of this.files.keys()) {
      const dest = path.join(dir, ...p.split('/'));
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      await fsp.rename(path.join(this.tmp, ...p.split('/')), dest);
    }
  }

  /** Closes the file being written, without caring whether its last write landed (it starts over). */
  async abort(): Promise<void> {
    await this.closeCurrent().catch(() => undefined);
  }

  /** Closes the file being written once its last write has landed; a failed write throws. */
  private async closeCurrent(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    if (!c) return;
    try {
      await c.writing;
    } finally {
      await c.handle.close();
    }
  }

  private check(f: CheckpointFile, digest: string, bytes: number): void {
    if (digest !== f.sha256) {
      throw new CheckpointClientError(grpc.status.DATA_LOSS, `${f.path}: received ${bytes} bytes hashing to ${digest}, expected sha256 ${f.sha256}`);
    }
  }

  private async open(p: string): Promise<fsp.FileHandle> {
    const file = path.join(this.tmp, ...p.split('/'));
    await fsp.mkdir(path.dirname(file), { recursive: true });
    return fsp.open(file, 'w');
  }
}

/** An upload id derived from what is uploaded: the same push again continues the same upload. */
function contentUploadId(manifest: CheckpointManifest, policyVersion: number): string {
  return 'push-' + createHash('sha256').update(canonicalManifestBytes(manifest)).update(String(policyVersion)).digest('hex').slice(0, 40);
}

/** Writes all of `data` at the file's current position; a short write (a full disk) is an error. */
async function writeAll(handle: fsp.FileHandle, data: Uint8Array, what: string): Promise<void> {
  const { bytesWritten } = await handle.write(data, 0, data.length);
  if (bytesWritten !== data.length) throw new Error(`${what}: wrote ${bytesWritten} of ${data.length} bytes (is the disk full?)`);
}

/** Writes one message, waiting when the stream asks to (backpressure); `sent` runs once gRPC has the bytes. */
function writeMessage(call: grpc.ClientWritableStream<PutCheckpointRequest>, message: PutCheckpointRequest, sent?: () => void): Promise<void> {
  if (call.write(message, sent)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      call.off('drain', onDrain);
      call.off('error', onError);
      call.off('close', onClose);
      call.off('status', onStatus);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error('the upload stream closed'));
    // The store answered (an error, most likely) while we were waiting to send more.
    const onStatus = () => done(new Error('the store ended the upload stream'));
    call.on('drain', onDrain);
    call.on('error', onError);
    call.on('close', onClose);
    call.on('status', onStatus);
  });
}

function clientError(err: unknown): Error {
  if (err instanceof CheckpointClientError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === 'number') return new CheckpointClientError(e.code, e.details || e.message || 'checkpoint store error');
  return err instanceof Error ? err : new Error(String(err));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
