// generation_config.json: how a Hugging Face model wants to be sampled. Temper reads one thing
// from it, the ids that end a completion. A chat model often has several: Qwen's end a turn
// with <|im_end|> and a document with <|endoftext|>, and the tokenizer names only one as EOS,
// so stopping at the tokenizer's EOS alone lets a model run past the end of its answer.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

export interface GenerationConfig {
  /** eos_token_id as a list (it may be written as one number, a list, or be absent). */
  eosTokenIds: number[];
}

/** The generation config of a model directory, or undefined when it has none. */
export function readGenerationConfig(dir: string): GenerationConfig | undefined {
  const file = path.join(dir, GENERATION_CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  return parseGenerationConfig(json, file);
}

export function parseGenerationConfig(json: unknown, origin = GENERATION_CONFIG_FILE): GenerationConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${origin}: expected a JSON object`);
  const eos = (json as { eos_token_id?: unknown }).eos_token_id;
  const list = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  for (const id of list) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new Error(`${origin}: eos_token_id must be a token id or a list of them, got ${JSON.stringify(eos)}`);
  }
  return { eosTokenIds: list as number[] };
}

/** The tokenizer's EOS followed by the config's ids, each once. */
export function stopIds(eos: number | undefined, extra: readonly number[] = []): number[] {
  return [...new Set([...(eos === undefined ? [] : [eos]), ...extra])];
}
