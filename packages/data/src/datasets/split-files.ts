// Which files of a dataset hold a split. Datasets come as a hub repository lays them out:
// data/train-00000-of-00002.parquet, main/test-00000-of-00001.parquet, train.jsonl,
// test/part-0.parquet. A file belongs to a split when its name is the split's, starts with it
// (followed by - _ or .), or sits in a folder named after it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataFileError } from '../loaders';

export const datasetExtensions = ['.parquet', '.jsonl'] as const;

const isDataFile = (name: string) => datasetExtensions.some((ext) => name.endsWith(ext));

/** Every .parquet and .jsonl file under `dir` (links followed, four folders deep at most), relative to it, sorted. */
export function datasetFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string, depth: number) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const child = path.join(rel, entry.name);
      const stat = entry.isSymbolicLink() ? fs.statSync(path.join(dir, child), { throwIfNoEntry: false }) : entry;
      if (stat?.isDirectory() && depth < 4) walk(child, depth + 1);
      else if (stat?.isFile() && isDataFile(entry.name)) out.push(child);
    }
  };
  walk('', 0);
  return out.sort();
}

/**
 * The files of `split` in `location` (absolute, in name order, so shards keep their order), or
 * `location` itself when it is a file. Errors say what was found instead.
 */
export function splitFiles(location: string, split: string): string[] {
  const stat = fs.statSync(location, { throwIfNoEntry: false });
  if (!stat) throw new DataFileError(location, undefined, 'no such file or directory');
  if (stat.isFile()) {
    if (!isDataFile(location)) throw new DataFileError(location, undefined, `a dataset file must be ${datasetExtensions.join(' or ')}`);
    return [location];
  }
  const all = datasetFiles(location);
  if (all.length === 0) throw new DataFileError(location, undefined, `holds no ${datasetExtensions.join(' or ')} files`);
  const matches = all.filter((rel) => inSplit(rel, split));
  if (matches.length === 0) {
    const found = all.slice(0, 8).join(', ') + (all.length > 8 ? ', …' : '');
    throw new DataFileError(location, undefined, `no files of split "${split}" (named ${split}.*, ${split}-*, ${split}_* or in a folder ${split}/; found ${found})`);
  }
  // A hub repository keeps one folder per configuration (gsm8k: main/ and socratic/), and
  // mixing two would train on both.
  const folders = [...new Set(matches.map((rel) => path.dirname(rel)))];
  if (folders.length > 1) {
    throw new DataFileError(location, undefined, `split "${split}" has files in several folders (${folders.join(', ')}): point path at one of them`);
  }
  return matches.map((rel) => path.join(location, rel));
}

function inSplit(rel: string, split: string): boolean {
  const parts = rel.split(path.sep);
  const name = parts.pop()!;
  const base = name.slice(0, name.lastIndexOf('.'));
  return parts.includes(split) || base === split || (base.startsWith(split) && '-_.'.includes(base[split.length]));
}
