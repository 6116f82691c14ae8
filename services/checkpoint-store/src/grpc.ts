// temper.v1.CheckpointStore over gRPC: thin handlers that turn requests into store calls
// and StoreErrors into statuses (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, ...).
import * as grpc from '@grpc/grpc-js';
import { allocChunkData, checkpointStoreDefinition, releaseChunkData } from '@temper/checkpoint-client';
import {
  CheckpointStoreServer,
  GetCheckpointResponse,
  PutCheckpointRequest,
  PutCheckpointResponse,
  serviceNames,
} from '@temper/proto';
import { Span, trace, Tracer } from '@opentelemetry/api';
import { contextFromCall, type Logger, type ServiceBinding } from '@temper/service';
import { withSpan } from '@temper/telemetry';
import { failedPrecondition, invalidArgument, StoreError } from './errors';
import { CheckpointStore } from './store';
import { Upload } from './uploads';

export interface HandlerOptions {
  log?: Logger;
  /** Each call runs in a span of this tracer, continuing the caller's trace (traceparent metadata). */
  tracer?: Tracer;
}

export function checkpointStoreBinding(store: CheckpointStore, opts: HandlerOptions = {}): ServiceBinding {
  return {
    name: serviceNames.checkpointStore,
    definition: checkpointStoreDefinition,
    implementation: checkpointStoreHandlers(store, opts),
    // Writing, tagging and deleting change what is stored; the rest only reads it.
    access: {
      putCheckpoint: 'control',
      startUpload: 'control',
      tagCheckpoint: 'control',
      deleteCheckpoint: 'control',
      getUploadStatus: 'read',
      getCheckpoint: 'read',
      listCheckpoints: 'read',
      getLineage: 'read',
    },
  };
}

export function checkpointStoreHandlers(store: CheckpointStore, opts: HandlerOptions = {}): CheckpointStoreServer {
  const log = opts.log;
  const tracer = opts.tracer ?? trace.getTracer('temper.checkpoint-store');
  const fail = (err: unknown): Partial<grpc.StatusObject> => toStatus(err, log);
  const traced = <T>(name: string, call: { metadata: grpc.Metadata }, work: (span: Span) => Promise<T>) =>
    withSpan(tracer, `CheckpointStore/${name}`, { parent: contextFromCall(call) }, work);
  const unary =
    <Req, Res>(name: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      traced(name, call, () => fn(call.request)).then(
        (res) => callback(null, res),
        (err) => callback(fail(err)),
      );
    };

  return {
    putCheckpoint: (call, callback) => {
      traced('PutCheckpoint', call, (span) => receiveUpload(store, call, span)).then(
        (res) => callback(null, res),
        (err) => callback(fail(err)),
      );
    },

    startUpload: unary('StartUpload', async (req) => {
      if (!req.header) throw invalidArgument('header is required');
      return { files: await store.startUpload(req.header) };
    }),

    getUploadStatus: unary('GetUploadStatus', (req) => store.uploadStatus(req.uploadId)),

    getCheckpoint: (call) => {
      traced('GetCheckpoint', call, (span) => sendCheckpoint(store, call, span)).catch((err) => {
        if (!call.cancelled) call.emit('error', fail(err));
      });
    },

    listCheckpoints: unary('ListCheckpoints', async (req) => {
      const { checkpoints, tags, prunedIds } = await store.list(req);
      return { checkpoints, tags: Object.fromEntries([...tags].map(([id, t]) => [id, { tags: t }])), prunedIds };
    }),

    getLineage: unary('GetLineage', (req) => store.lineage(req.checkpoint)),

    tagCheckpoint: unary('TagCheckpoint', async (req) => ({ manifest: await store.tag(req.checkpoint, req.tag, req.remove) })),

    deleteCheckpoint: unary('DeleteCheckpoint', async (req) => ({ deletedIds: await store.delete(req.checkpoint, req.force) })),
  };
}

/** header, chunks..., commit. Ending the stream without a commit keeps what arrived for a resume. */
async function receiveUpload(
  store: CheckpointStore,
  call: grpc.ServerReadableStream<PutCheckpointRequest, PutCheckpointResponse>,
  span: Span,
): Promise<PutCheckpointResponse> {
  let upload: Upload | undefined;
  let result: PutCheckpointResponse | undefined;
  let bytes = 0;
  try {
    for await (const req of call as AsyncIterable<PutCheckpointRequest>) {
      const part = req.part;
      if (result) throw invalidArgument('nothing may follow the commit');
      if (part?.$case === 'header') {
        if (upload) throw invalidArgument('header sent twice');
        const u = await store.uploads.start(part.value);
        u.acquire();
        upload = u;
        span.setAttributes({ 'temper.upload_id': u.id, 'temper.run_id': u.header.manifest?.runId ?? '' });
      } else if (!upload) {
        throw invalidArgument('the first message of PutCheckpoint must be a header');
      } else if (part?.$case === 'chunk') {
        await upload.writeChunk(part.value);
        bytes += part.value.data.length;
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
    span.setAttribute('temper.bytes_received', bytes);
    await upload?.release();
  }
  if (result) span.setAttributes({ 'temper.checkpoint_id': result.manifest!.id, 'temper.created': result.created });
  if (!result) throw failedPrecondition('the stream ended before a commit; what arrived is kept, resume with the same upload_id');
  return result;
}

async function sendCheckpoint(
  store: CheckpointStore,
  call: grpc.ServerWritableStream<{ checkpoint: string; paths: string[]; chunkSize: number }, GetCheckpointResponse>,
  span: Span,
): Promise<void> {
  const req = call.request;
  const { manifest, chunks } = await store.open(req.checkpoint, req.paths, req.chunkSize, allocChunkData);
  span.setAttributes({ 'temper.checkpoint_id': manifest.id, 'temper.run_id': manifest.runId });
  await write(call, { part: { $case: 'manifest', value: manifest } });
  let bytes = 0;
  // The next chunk is read and hashed while the previous one drains to the client; at most
  // one waits in gRPC's buffers.
  let draining: Promise<void> = Promise.resolve();
  try {
    for await (const chunk of chunks) {
      await draining;
      if (call.cancelled) return;
      bytes += chunk.data.length;
      draining = write(call, { part: { $case: 'chunk', value: chunk } }, () => releaseChunkData(chunk.data));
      draining.catch(() => undefined); // awaited before the next chunk goes out, or below
    }
    await draining;
  } finally {
    await draining.catch(() => undefined);
  }
  span.setAttribute('temper.bytes_sent', bytes);
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
