// temper.v1.CheckpointStore over gRPC: thin handlers that turn requests into store calls
// and StoreErrors into statuses (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, ...).
import * as grpc from '@grpc/grpc-js';
import {
  CheckpointStoreServer,
  GetCheckpointResponse,
  PutCheckpointRequest,
  PutCheckpointResponse,
  serviceNames,
} from '@temper/proto';
import type { Logger, ServiceBinding } from '@temper/service';
import { failedPrecondition, invalidArgument, StoreError } from './errors';
import { CheckpointStore } from './store';
import { Upload } from './uploads';
import { allocChunkData, checkpointStoreDefinition, releaseChunkData } from './wire';

export function checkpointStoreBinding(store: CheckpointStore, log?: Logger): ServiceBinding {
  return {
    name: serviceNames.checkpointStore,
    definition: checkpointStoreDefinition,
    implementation: checkpointStoreHandlers(store, log),
  };
}

export function checkpointStoreHandlers(store: CheckpointStore, log?: Logger): CheckpointStoreServer {
  const fail = (err: unknown): Partial<grpc.StatusObject> => toStatus(err, log);
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      fn(call.request).then(
        (res) => callback(null, res),
        (err) => callback(fail(err)),
      );
    };

  return {
    putCheckpoint: (call, callback) => {
      receiveUpload(store, call).then(
        (res) => callback(null, res),
        (err) => callback(fail(err)),
      );
    },

    startUpload: unary(async (req) => {
      if (!req.header) throw invalidArgument('header is required');
      return { files: await store.startUpload(req.header) };
    }),

    getUploadStatus: unary((req) => store.uploadStatus(req.uploadId)),

    getCheckpoint: (call) => {
      sendCheckpoint(store, call).catch((err) => {
        if (!call.cancelled) call.emit('error', fail(err));
      });
    },

    listCheckpoints: unary(async (req) => {
      const { checkpoints, tags, prunedIds } = await store.list(req);
      return { checkpoints, tags: Object.fromEntries([...tags].map(([id, t]) => [id, { tags: t }])), prunedIds };
    }),

    getLineage: unary((req) => store.lineage(req.checkpoint)),

    tagCheckpoint: unary(async (req) => ({ manifest: await store.tag(req.checkpoint, req.tag, req.remove) })),

    deleteCheckpoint: unary(async (req) => ({ deletedIds: await store.delete(req.checkpoint, req.force) })),
  };
}

/** header, chunks..., commit. Ending the stream without a commit keeps what arrived for a resume. */
async function receiveUpload(store: CheckpointStore, call: grpc.ServerReadableStream<PutCheckpointRequest, PutCheckpointResponse>): Promise<PutCheckpointResponse> {
  let upload: Upload | undefined;
  let result: PutCheckpointResponse | undefined;
  try {
    for await (const req of call as AsyncIterable<PutCheckpointRequest>) {
      const part = req.part;
      if (result) throw invalidArgument('nothing may follow the commit');
      if (part?.$case === 'header') {
        if (upload) throw invalidArgument('header sent twice');
        const u = await store.uploads.start(part.value);
        u.acquire();
        upload = u;
      } else if (!upload) {
        throw invalidArgument('the first message of PutCheckpoint must be a header');
      } else if (part?.$case === 'chunk') {
        await upload.writeChunk(part.value);
      } else if (part?.$case === 'commit') {
        // Still held by this stream while it commits; a successful commit retires the upload.
        await upload.settle();
        result = await store.commit(upload);
        upload = undefined;
      } else {
        throw invalidArgument('PutCheckpointRequest has no part (header, chunk or commit)');
      }
    }
  } finally {
    await upload?.release();
  }
  if (!result) throw failedPrecondition('the stream ended before a commit; what arrived is kept, resume with the same upload_id');
  return result;
}

async function sendCheckpoint(store: CheckpointStore, call: grpc.ServerWritableStream<{ checkpoint: string; paths: string[]; chunkSize: number }, GetCheckpointResponse>): Promise<void> {
  const req = call.request;
  const { manifest, chunks } = await store.open(req.checkpoint, req.paths, req.chunkSize, allocChunkData);
  await write(call, { part: { $case: 'manifest', value: manifest } });
  for await (const chunk of chunks) {
    if (call.cancelled) return;
    await write(call, { part: { $case: 'chunk', value: chunk } }, () => releaseChunkData(chunk.data));
  }
  call.end();
}

/**
 * Writes one message, waiting for the transport to drain when it asks to (backpressure).
 * `sent` runs once gRPC has taken the message's bytes.
 */
function write<T>(call: grpc.ServerWritableStream<unknown, T>, message: T, sent?: () => void): Promise<void> {
  if (call.write(message, sent)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      call.off('drain', onDrain);
      call.off('cancelled', onCancel);
      call.off('close', onCancel);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onCancel = () => done(new StoreError(grpc.status.CANCELLED, 'the client went away'));
    call.on('drain', onDrain);
    call.on('cancelled', onCancel);
    call.on('close', onCancel);
  });
}

function toStatus(err: unknown, log?: Logger): Partial<grpc.StatusObject> {
  if (err instanceof StoreError) return { code: err.code, details: err.message };
  log?.error('checkpoint store request failed', { err });
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
