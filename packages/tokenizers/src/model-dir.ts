// Which tokenizer goes with a model directory (a checkpoint pulled from the store, or a Hugging
// Face model). A directory names it in one of two ways: temper-tokenizer.json, a TokenizerSpec
// written by the learner (e.g. {"kind":"byte"}), or tokenizer.json, a Hugging Face tokenizer as
// real models ship it. The spec file wins when both are there, because it is the explicit
// choice of whoever wrote the checkpoint. Either way a completion also ends at every
// eos_token_id of the directory's generation_config.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGenerationConfig } from './generation-config';
import { createTokenizer, TokenizerSpec } from './load';
import type { Tokenizer } from './types';

export const TOKENIZER_SPEC_FILE = 'temper-tokenizer.json';
export const HF_TOKENIZER_FILE = 'tokenizer.json';
/** What a Hugging Face model directory keeps beside its weights that says how to read and write text. */
export const HF_TOKENIZER_FILES = [HF_TOKENIZER_FILE, 'tokenizer_config.json', 'chat_template.jinja', 'special_tokens_map.json'];

/** The spec of `dir`'s tokenizer (paths absolute and inside `dir`), or undefined when it names none. */
export function tokenizerSpecOfModel(dir: string): TokenizerSpec | undefined {
  const modelStops = readGenerationConfig(dir)?.eosTokenIds ?? [];
  const specFile = path.join(dir, TOKENIZER_SPEC_FILE);
  if (fs.existsSync(specFile)) {
    const spec = readSpec(specFile, dir);
    return { ...spec, stopTokenIds: [...new Set([...(spec.stopTokenIds ?? []), ...modelStops])] };
  }
  if (fs.existsSync(path.join(dir, HF_TOKENIZER_FILE))) return { kind: 'huggingface', path: dir, stopTokenIds: modelStops };
  return undefined;
}

/** The tokenizer of a model directory; an error says what is missing. */
export function loadModelTokenizer(dir: string): Tokenizer {
  const spec = tokenizerSpecOfModel(dir);
  if (!spec) throw new Error(`${dir} has no tokenizer: it needs ${TOKENIZER_SPEC_FILE} (a Temper tokenizer spec) or ${HF_TOKENIZER_FILE} (Hugging Face)`);
  return createTokenizer(spec);
}

function readSpec(file: string, dir: string): TokenizerSpec {
  let spec: unknown;
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new Error(`${file}: expected a JSON object such as {"kind":"byte"}`);
  const s = spec as { kind?: unknown; path?: unknown; stopTokenIds?: unknown };
  if (s.stopTokenIds !== undefined && !(Array.isArray(s.stopTokenIds) && s.stopTokenIds.every((id) => Number.isInteger(id) && id >= 0))) {
    throw new Error(`${file}: stopTokenIds must be a list of token ids`);
  }
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
