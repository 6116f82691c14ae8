// Which tokenizer goes with a model directory. A directory names its tokenizer in one of two
// ways: temper-tokenizer.json, a TokenizerSpec written by the learner (e.g. {"kind":"byte"}),
// or tokenizer.json, a Hugging Face tokenizer as real models ship it. The spec file wins when
// both are there, because it is the explicit choice of whoever wrote the checkpoint.
import { TOKENIZER_SPEC_FILE } from '@temper/service';
import { createTokenizer, Tokenizer, TokenizerSpec } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as path from 'node:path';

export { TOKENIZER_SPEC_FILE };
export const HF_TOKENIZER_FILE = 'tokenizer.json';

export function loadTokenizerForModel(dir: string): Tokenizer {
  const specFile = path.join(dir, TOKENIZER_SPEC_FILE);
  if (fs.existsSync(specFile)) return createTokenizer(readSpec(specFile, dir));
  if (fs.existsSync(path.join(dir, HF_TOKENIZER_FILE))) return createTokenizer({ kind: 'huggingface', path: dir });
  throw new Error(`${dir} has no tokenizer: it needs ${TOKENIZER_SPEC_FILE} (a Temper tokenizer spec) or ${HF_TOKENIZER_FILE} (Hugging Face)`);
}

function readSpec(file: string, dir: string): TokenizerSpec {
  let spec: unknown;
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new Error(`${file}: expected a JSON object such as {"kind":"byte"}`);
  const s = spec as { kind?: unknown; path?: unknown };
  if (s.kind === 'byte') return spec as TokenizerSpec;
  if (s.kind === 'huggingface') {
    // A relative path means a file shipped inside the checkpoint; a missing one, the directory itself.
    if (s.path !== undefined && typeof s.path !== 'string') throw new Error(`${file}: path must be a string`);
    const where = s.path ? path.resolve(dir, s.path) : dir;
    if (path.relative(dir, where).startsWith('..')) throw new Error(`${file}: path must stay inside the model directory`);
    return { ...(spec as TokenizerSpec & { kind: 'huggingface' }), path: where };
  }
  throw new Error(`${file}: kind must be "byte" or "huggingface" (got ${JSON.stringify(s.kind)})`);
}
