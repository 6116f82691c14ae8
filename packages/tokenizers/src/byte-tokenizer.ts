// A byte-level tokenizer for the tiny models Temper trains from scratch: every UTF-8 byte is
// its own id, so any text round-trips and the vocabulary is a few hundred entries (small
// embedding, fast softmax on CPU). The answer-format markers are single tokens so that a
// model of a few million parameters has to learn one symbol, not a seven-byte spelling,
// to produce <think>...</think><answer>...</answer>.
import { compileChatTemplate, type ChatTemplate } from './chat-template';
import { stopIds } from './generation-config';
import type { ChatMessage, ChatTemplateOptions, SpecialTokenIds, Tokenizer } from './types';

/** Ids 0..255 are the bytes; special tokens follow in this order. */
export const byteSpecialTokens = ['<pad>', '<bos>', '<eos>', '<think>', '</think>', '<answer>', '</answer>'] as const;

// Only these are "control" tokens that decode(..., {skipSpecialTokens}) leaves out; the
// format markers carry meaning in a completion and are kept.
const controlTokens = new Set(['<pad>', '<bos>', '<eos>']);

/**
 * The default conversation shape for the byte tokenizer: as short as possible because every
 * character costs a tiny model context and compute. System text, then "Q: " for a user turn
 * and "A: " for an assistant turn, each assistant turn closed by <eos>; "T: " for a tool's
 * result in a multi-turn rollout.
 */
export const byteChatTemplate =
  '{% for message in messages %}' +
  "{% if message.role == 'system' %}{{ message.content }}\n" +
  "{% elif message.role == 'user' %}Q: {{ message.content }}\n" +
  "{% elif message.role == 'assistant' %}A: {{ message.content }}{{ eos_token }}\n" +
  "{% elif message.role == 'tool' %}T: {{ message.content }}\n" +
  "{% else %}{{ raise_exception('unknown role: ' + message.role) }}{% endif %}" +
  '{% endfor %}' +
  "{% if add_generation_prompt %}A: {% endif %}";

export interface ByteTokenizerOptions {
  /** More single-token strings, appended after the built-in ones. */
  extraSpecialTokens?: readonly string[];
  /** A Jinja chat template; defaults to byteChatTemplate. */
  chatTemplate?: string;
  /** More ids that end a completion besides <eos> (a model directory's generation_config.json). */
  stopTokenIds?: readonly number[];
}

export class ByteTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly specialTokens: SpecialTokenIds;
  readonly stopTokenIds: readonly number[];
  private readonly idOfSpecial = new Map<string, number>();
  private readonly specialOfId: string[] = [];
  // Longest first, so a special token that is a prefix of another never shadows it.
  private readonly specialsByLength: string[];
  private readonly specialFirstChars: Set<string>;
  private readonly template: ChatTemplate;
  private readonly utf8 = new TextEncoder();

  constructor(options: ByteTokenizerOptions = {}) {
    const specials = [...byteSpecialTokens, ...(options.extraSpecialTokens ?? [])];
    for (const s of specials) {
      if (s.length === 0) throw new Error('a special token cannot be empty');
      if (this.idOfSpecial.has(s)) throw new Error(`special token ${s} is listed twice`);
      this.idOfSpecial.set(s, 256 + this.specialOfId.length);
      this.specialOfId.push(s);
    }
    this.specialsByLength = [...specials].sort((a, b) => b.length - a.length);
    this.specialFirstChars = new Set(specials.map((s) => s[0]));
    this.vocabSize = 256 + specials.length;
    const id = (s: string) => this.idOfSpecial.get(s);
    this.specialTokens = {
      pad: id('<pad>'),
      bos: id('<bos>'),
      eos: id('<eos>'),
      think: id('<think>'),
      thinkEnd: id('</think>'),
      answer: id('<answer>'),
      answerEnd: id('</answer>'),
    };
    for (const stop of options.stopTokenIds ?? []) {
      if (!Number.isInteger(stop) || stop < 0 || stop >= this.vocabSize) throw new Error(`stop token ${stop} is not a token id of the byte tokenizer (vocabulary ${this.vocabSize})`);
    }
    this.stopTokenIds = stopIds(this.specialTokens.eos, options.stopTokenIds);
    this.template = compileChatTemplate(options.chatTemplate ?? byteChatTemplate, { bosToken: '<bos>', eosToken: '<eos>', padToken: '<pad>' }, 'byte tokenizer chat template');
  }

  /** The id of a special token, or of a single ASCII character (its byte); else undefined. */
  tokenToId(token: string): number | undefined {
    const special = this.idOfSpecial.get(token);
    if (special !== undefined) return special;
    return token.length === 1 && token.charCodeAt(0) < 128 ? token.charCodeAt(0) : undefined;
  }

  encode(text: string, options: { parseSpecialTokens?: boolean } = {}): Int32Array {
    const parse = options.parseSpecialTokens ?? true;
    const out: number[] = [];
    let plainStart = 0;
    const flushPlain = (end: number) => {
      if (end > plainStart) for (const b of this.utf8.encode(text.slice(plainStart, end))) out.push(b);
    };
    if (parse) {
      for (let i = 0; i < text.length; ) {
        // Most characters cannot start a special token; only those that can pay for the search.
        const hit = this.specialFirstChars.has(text[i]) ? this.specialsByLength.find((s) => text.startsWith(s, i)) : undefined;
        if (hit === undefined) {
          i++;
          continue;
        }
        flushPlain(i);
        out.push(this.idOfSpecial.get(hit)!);
        i += hit.length;
        plainStart = i;
      }
    }
    flushPlain(text.length);
    return Int32Array.from(out);
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    let text = '';
    let bytes: number[] = [];
    // Bytes are decoded in runs so a multi-byte character split across ids is rebuilt; a run
    // that is not valid UTF-8 (a model can emit any byte) decodes to U+FFFD, never throws.
    const flush = () => {
      if (bytes.length > 0) text += Buffer.from(bytes).toString('utf8');
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0) throw new RangeError(`token id ${id} is not a token id`);
      if (id >= this.vocabSize) {
        // A model's embedding may be padded past the vocabulary, so a sampler can produce such
        // an id; it reads as a replacement character instead of failing the rollout.
        flush();
        text += '\ufffd';
        continue;
      }
      if (id < 256) {
        bytes.push(id);
        continue;
      }
      flush();
      const token = this.specialOfId[id - 256];
      if (!(skip && controlTokens.has(token))) text += token;
    }
    flush();
    return text;
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
    return this.template.render(messages, options);
  }
}
