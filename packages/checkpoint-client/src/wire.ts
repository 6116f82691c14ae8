// The CheckpointStore wire, shared by the client and the store: chunk size, flow-control
// window, and the service definition with a faster wire path for file chunks, the
// messages that carry nearly all the bytes. The encoding is standard protobuf (any client
// can talk to the store); only how this code builds and parses chunk messages differs:
//
// - encoding a chunk writes its few header bytes and its data into one buffer (ts-proto
//   builds the message in pieces, joins them, and grpc-js copies the result again);
// - decoding a chunk returns the data as a view of the received message, not a copy.
//
// Both PutCheckpointRequest and GetCheckpointResponse carry a chunk as field 2. Anything
// else (headers, manifests, commits) goes through the generated code.
import { CheckpointStoreService, FileChunk, GetCheckpointResponse, PutCheckpointRequest } from '@temper/proto';

// 4 MiB: measured faster both ways than 1 MiB over loopback (fewer messages through grpc-js).
export const DEFAULT_CHUNK_BYTES = 4 << 20;

/**
 * HTTP/2 flow-control window of a checkpoint stream, both ends. Node's default is 64 KiB per
 * stream, so a transfer would wait for a window update every 64 KiB; on loopback that caps a
 * put near 400 MB/s however fast the rest is (the store widens its side: flow-control.ts).
 */
export const FLOW_CONTROL_WINDOW = 16 << 20;

type ChunkMessage = { part?: { $case: string; value: unknown } };

const CHUNK_FIELD_TAG = (2 << 3) | 2;

// Chunk buffers with room in front for the message header, reused once gRPC has copied
// them into its frame. Allocating a fresh megabyte per chunk makes V8 collect garbage
// every few dozen chunks (external memory pressure), which costs more than the copying.
const HEADROOM = 32;
const roots = new WeakMap<ArrayBufferLike, Buffer>();
const free = new Map<number, Buffer[]>();
const MAX_FREE = 64;

/**
 * A buffer for `size` bytes of file data with room in front for the message header of a
 * chunk of `path`, so the chunk can be sent without copying. Give it back with
 * releaseChunkData once gRPC is done with it (the write callback).
 */
export function allocChunkData(size: number, path: string): Buffer {
  const headroom = HEADROOM + Buffer.byteLength(path);
  const capacity = headroom + size;
  // allocUnsafeSlow: a buffer of its own. A pooled one shares its ArrayBuffer with unrelated
  // small buffers, which `roots` would then mistake for chunk data.
  const root = free.get(capacity)?.pop() ?? Buffer.allocUnsafeSlow(capacity);
  roots.set(root.buffer, root);
  return root.subarray(headroom);
}

export function releaseChunkData(data: Uint8Array): void {
  const root = roots.get(data.buffer);
  if (!root) return;
  const list = free.get(root.length) ?? [];
  if (list.length < MAX_FREE) list.push(root);
  free.set(root.length, list);
}

function encodeChunkMessage(chunk: FileChunk): Buffer {
  const pathBytes = Buffer.byteLength(chunk.path);
  const data = chunk.data;
  let inner = 0;
  if (pathBytes > 0) inner += 1 + varintSize(pathBytes) + pathBytes;
  if (chunk.offset > 0) inner += 1 + varintSize(chunk.offset);
  if (data.length > 0) inner += 1 + varintSize(data.length) + data.length;
  const total = 1 + varintSize(inner) + inner;
  const root = roots.get(data.buffer);
  const headerBytes = total - data.length;
  if (root && data.length > 0 && data.byteOffset - root.byteOffset >= headerBytes) {
    // The data sits in a chunk buffer: write the header just in front of it.
    const start = data.byteOffset - root.byteOffset - headerBytes;
    const out = root.subarray(start, start + total);
    writeHeader(out, chunk, pathBytes, inner);
    return out;
  }
  const out = Buffer.allocUnsafe(total);
  const pos = writeHeader(out, chunk, pathBytes, inner);
  if (data.length > 0) out.set(data, pos);
  return out;
}

/** Writes everything of a chunk message but the data bytes; returns where they go. */
function writeHeader(out: Buffer, chunk: FileChunk, pathBytes: number, inner: number): number {
  const data = chunk.data;
  let pos = 0;
  out[pos++] = CHUNK_FIELD_TAG;
  pos = writeVarint(out, pos, inner);
  if (pathBytes > 0) {
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint(out, pos, pathBytes);
    pos += out.write(chunk.path, pos, 'utf8');
  }
  if (chunk.offset > 0) {
    out[pos++] = 2 << 3;
    pos = writeVarint(out, pos, chunk.offset);
  }
  if (data.length > 0) {
    out[pos++] = (3 << 3) | 2;
    pos = writeVarint(out, pos, data.length);
  }
  return pos;
}

/** The chunk in `buf` when it is exactly one chunk message this code understands, else undefined. */
function decodeChunkMessage(buf: Buffer): FileChunk | undefined {
  if (buf.length < 2 || buf[0] !== CHUNK_FIELD_TAG) return undefined;
  let [len, pos] = readVarint(buf, 1);
  if (pos + len !== buf.length) return undefined;
  const chunk: FileChunk = { path: '', offset: 0, data: Buffer.alloc(0) };
  while (pos < buf.length) {
    const tag = buf[pos++];
    if (tag === ((1 << 3) | 2)) {
      [len, pos] = readVarint(buf, pos);
      chunk.path = buf.toString('utf8', pos, pos + len);
      pos += len;
    } else if (tag === 2 << 3) {
      [chunk.offset, pos] = readVarint(buf, pos);
    } else if (tag === ((3 << 3) | 2)) {
      [len, pos] = readVarint(buf, pos);
      chunk.data = buf.subarray(pos, pos + len);
      pos += len;
    } else {
      return undefined; // a field this fast path does not know: let the generated code decide
    }
    if (pos > buf.length) return undefined;
  }
  return chunk;
}

function serializer<T extends ChunkMessage>(generated: (m: T) => Buffer): (m: T) => Buffer {
  return (m) => (m.part?.$case === 'chunk' ? encodeChunkMessage(m.part.value as FileChunk) : generated(m));
}

function deserializer<T>(generated: (b: Buffer) => T): (b: Buffer) => T {
  return (b) => {
    const chunk = decodeChunkMessage(b);
    return chunk ? ({ part: { $case: 'chunk', value: chunk } } as T) : generated(b);
  };
}

const s = CheckpointStoreService;

export const checkpointStoreDefinition = {
  ...s,
  putCheckpoint: {
    ...s.putCheckpoint,
    requestSerialize: serializer<PutCheckpointRequest>(s.putCheckpoint.requestSerialize),
    requestDeserialize: deserializer<PutCheckpointRequest>(s.putCheckpoint.requestDeserialize),
  },
  getCheckpoint: {
    ...s.getCheckpoint,
    responseSerialize: serializer<GetCheckpointResponse>(s.getCheckpoint.responseSerialize),
    responseDeserialize: deserializer<GetCheckpointResponse>(s.getCheckpoint.responseDeserialize),
  },
} as const;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function readVarint(buf: Buffer, pos: number): [number, number] {
  let n = 0;
  let scale = 1;
  for (;;) {
    if (pos >= buf.length || scale > 2 ** 49) return [Number.MAX_SAFE_INTEGER, buf.length + 1];
    const b = buf[pos++];
    n += (b & 0x7f) * scale;
    if (b < 0x80) return [n, pos];
    scale *= 128;
  }
}

export const wireForTests = { encodeChunkMessage, decodeChunkMessage };
