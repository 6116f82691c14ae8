// Hashing files on a second thread. A push hashes every file before it sends a byte (the
// manifest, with the hashes, goes first), and sha256 keeps one core busy at ~1.5 GB/s, so for
// a sharded checkpoint the main thread and one worker each take files from a shared queue.
import { Worker } from 'node:worker_threads';

// Plain JavaScript, run with eval: the worker then needs no file of its own next to the
// compiled code (the tests run the TypeScript sources). Reads are synchronous: the thread
// does nothing else, and the file is usually in the page cache (it was just written).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
let buf;
parentPort.on('message', ({ file, chunkBytes }) => {
  let fd;
  try {
    if (!buf || buf.length !== chunkBytes) buf = Buffer.allocUnsafe(chunkBytes);
    const hash = createHash('sha256');
    let size = 0;
    fd = fs.openSync(file, 'r');
    for (let n; (n = fs.readSync(fd, buf, 0, chunkBytes, size)) > 0; size += n) hash.update(buf.subarray(0, n));
    parentPort.postMessage({ sha256: hash.digest('hex'), size });
  } catch (err) {
    parentPort.postMessage({ error: err && err.message ? err.message : String(err) });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
});
`;

export interface FileDigest {
  sha256: string;
  size: number;
}

/** A thread that hashes one file at a time. */
export class HashWorker {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  private waiting?: { resolve: (d: FileDigest) => void; reject: (e: Error) => void };

  constructor() {
    this.worker.on('message', (m: FileDigest & { error?: string }) => {
      const w = this.waiting!;
      this.waiting = undefined;
      if (m.error !== undefined) w.reject(new Error(m.error));
      else w.resolve({ sha256: m.sha256, size: m.size });
    });
    this.worker.on('error', (err) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(new Error(`the hashing thread failed: ${err.message}`));
    });
  }

  hash(file: string, chunkBytes: number): Promise<FileDigest> {
    if (this.waiting) throw new Error('HashWorker hashes one file at a time');
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage({ file, chunkBytes });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
