// Where checkpoints live. A backend stores blobs (file contents, named by their sha256),
// manifests (by checkpoint id) and tags (name -> id). It does not check hashes or
// lineage; the store above it does, so every backend gets the same guarantees.
import { CheckpointManifest } from '@temper/proto';

export interface Backend {
  readonly kind: string;
  /** Human-readable location, for logs. */
  readonly location: string;

  hasBlob(sha256: string): Promise<boolean>;
  /**
   * Takes a complete local file, already verified to hash to `sha256`, into the store. The
   * file is consumed (moved or deleted). Storing a blob that exists already is harmless.
   */
  importBlob(sha256: string, localPath: string): Promise<void>;
  /**
   * The blob's bytes, in order, in chunks of about chunkSize. Throws NOT_FOUND if absent.
   * `alloc`, when given, supplies the buffers to read into (the caller may reuse them).
   */
  readBlob(sha256: string, chunkSize: number, alloc?: (size: number) => Buffer): AsyncIterable<Uint8Array>;
  deleteBlob(sha256: string): Promise<void>;
  listBlobs(): Promise<string[]>;

  /** Writes a manifest atomically: readers see all of it or none. */
  putManifest(m: CheckpointManifest): Promise<void>;
  getManifest(id: string): Promise<CheckpointManifest | undefined>;
  listManifestIds(): Promise<string[]>;
  /** Removes a manifest (and its pruned mark). */
  deleteManifest(id: string): Promise<void>;

  /** Ids whose files retention removed while keeping their manifests for lineage. */
  readPruned(): Promise<Set<string>>;
  markPruned(id: string): Promise<void>;

  readTags(): Promise<Map<string, string>>;
  /** Points `tag` at `id`, or removes it when id is undefined. */
  writeTag(tag: string, id: string | undefined): Promise<void>;

  close(): Promise<void>;
}
