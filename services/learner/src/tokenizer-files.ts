// The tokenizer a checkpoint goes with, written into it and read back. A byte tokenizer is a
// spec (temper-tokenizer.json); a Hugging Face one is files, and they travel inside every
// checkpoint with generation_config.json (the ids that end a completion): a generator, an
// evaluation or an export then needs nothing but the checkpoint, whichever machine the run's
// tokenizer directory was on.
//
// A pulled checkpoint directory is removed once its model is loaded, so the files of a Hugging
// Face tokenizer are kept in a cache directory named by their content; the spec the learner
// carries for the rest of the stage points there.
import { GENERATION_CONFIG_FILE, HF_TOKENIZER_FILE, HF_TOKENIZER_FILES, TOKENIZER_SPEC_FILE, tokenizerSpecOfModel, TokenizerSpec } from '@temper/tokenizers';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Writes `spec` into checkpoint directory `dir`, with a Hugging Face tokenizer's files and generation config. */
export function writeTokenizer(dir: string, spec: TokenizerSpec): void {
  if (spec.kind !== 'huggingface') {
    fs.writeFileSync(path.join(dir, TOKENIZER_SPEC_FILE), JSON.stringify(spec));
    return;
  }
  const files = tokenizerFiles(spec.path);
  for (const [name, source] of files) fs.copyFileSync(source, path.join(dir, name));
  // No path: the tokenizer is the checkpoint's own files.
  const { kind, chatTemplate, stopTokenIds } = spec;
  fs.writeFileSync(path.join(dir, TOKENIZER_SPEC_FILE), JSON.stringify({ kind, chatTemplate, stopTokenIds }));
}

/**
 * The tokenizer of a pulled checkpoint directory (undefined when it names none): a byte spec as
 * written (with the directory's generation config as stop ids), a Hugging Face tokenizer as a
 * spec whose path is a cached copy of its files.
 */
export function readTokenizer(dir: string, cacheRoot = path.join(os.tmpdir(), 'temper-learner-tokenizers')): TokenizerSpec | undefined {
  const spec = tokenizerSpecOfModel(dir);
  if (spec?.kind !== 'huggingface') return spec;
  const files = tokenizerFiles(spec.path);
  // The model's generation config is at the checkpoint's top, wherever its tokenizer is.
  const generation = path.join(dir, GENERATION_CONFIG_FILE);
  if (fs.existsSync(generation)) files.set(GENERATION_CONFIG_FILE, generation);
  return { ...spec, path: cacheFiles(files, cacheRoot) };
}

/** The files of the tokenizer at `location` (a tokenizer.json, or the folder it is in) by their names in a model directory. */
function tokenizerFiles(location: string): Map<string, string> {
  const isDir = fs.statSync(location).isDirectory();
  const from = isDir ? location : path.dirname(location);
  const files = new Map<string, string>();
  for (const name of [...HF_TOKENIZER_FILES, GENERATION_CONFIG_FILE]) {
    const source = name === HF_TOKENIZER_FILE && !isDir ? location : path.join(from, name);
    if (fs.existsSync(source)) files.set(name, source);
  }
  return files;
}

// Content-addressed: the same tokenizer is kept once however many checkpoints carry it, and a
// directory appears whole (written beside it, then renamed) or not at all.
function cacheFiles(sources: Map<string, string>, root: string): string {
  const files = [...sources].map(([name, source]) => [name, fs.readFileSync(source)] as const).sort(([a], [b]) => a.localeCompare(b));
  const hash = createHash('sha256');
  for (const [name, bytes] of files) hash.update(`${name}\0${bytes.length}\0`).update(bytes);
  const dir = path.join(root, hash.digest('hex').slice(0, 32));
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(root, { recursive: true });
  const partial = fs.mkdtempSync(path.join(root, '.partial-'));
  for (const [name, bytes] of files) fs.writeFileSync(path.join(partial, name), bytes);
  try {
    fs.renameSync(partial, dir);
  } catch (err) {
    // Another load of the same files got there first.
    fs.rmSync(partial, { recursive: true, force: true });
    if (!fs.existsSync(dir)) throw err;
  }
  return dir;
}
