// Local checkpoint directories: the files in one (relative paths with "/"), and their
// sha256, read in chunks so a multi-gigabyte shard never sits in memory whole.
import { CheckpointFile } from '@temper/proto';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** Folders a pull writes into before its files are verified; never part of a checkpoint. */
export const PULL_TEMP_PREFIX = '.temper-pull-';

/** Every regular file under `dir` (symlinks followed), as sorted relative paths. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const entry of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      if (entry.name.startsWith(PULL_TEMP_PREFIX)) continue;
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const st = await fsp.stat(path.join(dir, relPath));
      if (st.isDirectory()) await walk(relPath);
      else if (st.isFile()) out.push(relPath);
    }
  };
  await walk('');
  return out.sort();
}

export async function hashFile(file: string, chunkBytes = 4 << 20): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: chunkBytes })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The files of a checkpoint directory with their sizes and hashes. */
export async function describeDir(dir: string): Promise<CheckpointFile[]> {
  const files: CheckpointFile[] = [];
  for (const rel of await listFiles(dir)) files.push({ path: rel, ...(await hashFile(path.join(dir, ...rel.split('/')))) });
  return files;
}
