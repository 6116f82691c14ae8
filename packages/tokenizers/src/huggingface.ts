// Hugging Face tokenizers for real models: tokenizer.json (the fast-tokenizer format) read
// with @huggingface/tokenizers, a pure-JS implementation, so it works offline on the files
// a model directory already has. The chat template and special-token names come from
// tokenizer_config.json (or chat_template.jinja, the newer separate file), as transformers does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as HfTokenizers from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import { compileChatTemplate, type ChatTemplate } from './chat-template';
import { readGenerationConfig, stopIds } from './generation-config';
import type { ChatMessage, ChatTemplateOptions, SpecialTokenIds, Tokenizer } from './types';

// An ES module with a CommonJS build, loaded the way chat-template.ts explains.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Tokenizer: HfTokenizer } = require('@huggingface/tokenizers') as typeof HfTokenizers;
type HfTokenizer = HfTokenizers.Tokenizer;

/** What tokenizer_config.json holds that Temper uses; everything is optional. */
export interface HuggingFaceTokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string | { name: string; template: string }[] | null;
  [key: string]: unknown;
}

export interface HuggingFaceTokenizerOptions {
  /** Overrides the template from the config (e.g. a base model that ships none). */
  chatTemplate?: string;
  /** Name used in error messages, e.g. the directory the files came from. */
  origin?: string;
  /** More ids that end a completion (generation_config.json's eos_token_id). */
  stopTokenIds?: readonly number[];
}

function tokenContent(t: HuggingFaceTokenizerConfig['bos_token']): string | undefined {
  if (t === null || t === undefined) return undefined;
  return typeof t === 'string' ? t : t.content;
}

function pickChatTemplate(config: HuggingFaceTokenizerConfig, origin: string): string | undefined {
  const t = config.chat_template;
  if (t === null || t === undefined) return undefined;
  if (typeof t === 'string') return t;
  // Several named templates (e.g. "default", "tool_use"): the plain chat is "default".
  const named = t.find((x) => x.name === 'default') ?? t[0];
  if (!named || typeof named.template !== 'string') throw new Error(`${origin}: chat_template has no usable template`);
  return named.template;
}

export class HuggingFaceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly specialTokens: SpecialTokenIds;
  readonly stopTokenIds: readonly number[];
  private readonly inner: HfTokenizer;
  private readonly template: ChatTemplate | undefined;
  private readonly origin: string;

  constructor(tokenizerJson: unknown, config: HuggingFaceTokenizerConfig = {}, options: HuggingFaceTokenizerOptions = {}) {
    this.origin = options.origin ?? 'tokenizer.json';
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
      throw new Error(`${this.origin}: not a tokenizer.json (no "model" section)`);
    }
    try {
      this.inner = new HfTokenizer(tokenizerJson, config);
    } catch (err) {
      throw new Error(`${this.origin}: cannot build the tokenizer: ${(err as Error).message}`);
    }
    let maxId = -1;
    for (const id of this.inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const idOf = (token: string | undefined) => (token === undefined ? undefined : this.inner.token_to_id(token));
    const bos = tokenContent(config.bos_token);
    const eos = tokenContent(config.eos_token);
    const pad = tokenContent(config.pad_token);
    const unk = tokenContent(config.unk_token);
    this.specialTokens = {
      bos: idOf(bos),
      eos: idOf(eos),
      pad: idOf(pad),
      unk: idOf(unk),
      think: idOf('<think>'),
      thinkEnd: idOf('</think>'),
      answer: idOf('<answer>'),
      answerEnd: idOf('</answer>'),
    };
    for (const id of options.stopTokenIds ?? []) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`${this.origin}: stop token ${id} (generation_config.json eos_token_id) is not a token id: the tokenizer's vocabulary is ${this.vocabSize}`);
      }
    }
    this.stopTokenIds = stopIds(this.specialTokens.eos, options.stopTokenIds);
    const source = options.chatTemplate ?? pickChatTemplate(config, this.origin);
    this.template = source === undefined ? undefined : compileChatTemplate(source, { bosToken: bos, eosToken: eos, padToken: pad, unkToken: unk }, `${this.origin} chat template`);
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** Ids of `text`; the post-processor's BOS/EOS are added only when asked. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): Int32Array {
    return Int32Array.from(this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids);
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = Array.from(ids);
    for (const id of list) if (!Number.isInteger(id) || id < 0) throw new RangeError(`${this.origin}: ${id} is not a token id`);
    const run = (part: number[]) =>
      // The library refuses an empty list; an empty completion is ordinary here.
      part.length === 0 ? '' : this.inner.decode(part, { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
    if (list.every((id) => id < this.vocabSize)) return run(list);
    // Models pad their embedding past the tokenizer's vocabulary (Qwen2 by a few hundred
    // ids), so a sampler can produce an id with no token: it reads as a replacement
    // character, and the runs of real tokens around it decode as usual.
    let text = '';
    let part: number[] = [];
    for (const id of list) {
      if (id < this.vocabSize) part.push(id);
      else {
        text += run(part) + '\ufffd';
        part = [];
      }
    }
    return text + run(part);
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
    if (!this.template) throw new Error(`${this.origin}: the tokenizer has no chat template (give one in tokenizer_config.json, chat_template.jinja, or the options)`);
    return this.template.render(messages, options);
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * A tokenizer from a model directory (tokenizer.json, and tokenizer_config.json,
 * chat_template.jinja and generation_config.json when present) or from a tokenizer.json file path.
 */
export function loadHuggingFaceTokenizer(location: string, options: Pick<HuggingFaceTokenizerOptions, 'chatTemplate' | 'stopTokenIds'> = {}): HuggingFaceTokenizer {
  const isDir = fs.existsSync(location) && fs.statSync(location).isDirectory();
  const dir = isDir ? location : path.dirname(location);
  const tokenizerFile = isDir ? path.join(location, 'tokenizer.json') : location;
  if (!fs.existsSync(tokenizerFile)) throw new Error(`${tokenizerFile}: no such file (a Hugging Face tokenizer needs tokenizer.json)`);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = (fs.existsSync(configFile) ? readJson(configFile) : {}) as HuggingFaceTokenizerConfig;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`${configFile}: expected a JSON object`);
  const templateFile = path.join(dir, 'chat_template.jinja');
  const chatTemplate = options.chatTemplate ?? (fs.existsSync(templateFile) ? fs.readFileSync(templateFile, 'utf8') : undefined);
  const stopTokenIds = [...(readGenerationConfig(dir)?.eosTokenIds ?? []), ...(options.stopTokenIds ?? [])];
  return new HuggingFaceTokenizer(readJson(tokenizerFile), config, { chatTemplate, origin: tokenizerFile, stopTokenIds });
}
