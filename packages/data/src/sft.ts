// Supervised fine-tuning examples: the prompt (rendered by the tokenizer's chat template)
// followed by the response and EOS, with the loss only on the response and EOS. Prompt and
// response are tokenised separately and concatenated, so a BPE merge can never blur the
// boundary between what the model is given and what it must produce.

/** The part of a tokenizer SFT needs (structurally the @temper/tokenizers interface). */
export interface SftTokenizer {
  encode(text: string): Int32Array;
  applyChatTemplate(messages: readonly { role: string; content: string }[], options?: { addGenerationPrompt?: boolean; enableThinking?: boolean }): string;
  readonly specialTokens: { eos?: number; pad?: number };
}

export interface SftExample {
  tokens: Int32Array;
  /** 1 on response tokens (and the closing EOS), 0 on the prompt. */
  lossMask: Uint8Array;
  promptLength: number;
  /** The response was cut to fit maxLength (and then has no EOS). */
  truncated: boolean;
}

export interface SftOptions {
  maxLength: number;
  /**
   * When prompt + response + EOS is longer than maxLength: 'drop' (return null) or
   * 'truncate' (cut the end of the response; a prompt that leaves no room is still dropped).
   * Default 'drop': a cut response teaches an answer that stops mid-way.
   */
  overflow?: 'drop' | 'truncate';
  /** The chat template's enable_thinking (unset: the template's default). */
  enableThinking?: boolean;
}

/** An example from token ids; null when it does not fit (see SftOptions.overflow). */
export function buildSftExample(promptIds: ArrayLike<number>, responseIds: ArrayLike<number>, eosId: number, options: SftOptions): SftExample | null {
  const { maxLength } = options;
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new RangeError(`maxLength must be an integer >= 2, got ${maxLength}`);
  const full = promptIds.length + responseIds.length + 1;
  let responseKept = responseIds.length;
  let truncated = false;
  if (full > maxLength) {
    if ((options.overflow ?? 'drop') === 'drop' || promptIds.length >= maxLength) return null;
    responseKept = maxLength - promptIds.length;
    truncated = true;
  }
  const length = promptIds.length + responseKept + (truncated ? 0 : 1);
  const tokens = new Int32Array(length);
  const lossMask = new Uint8Array(length);
  tokens.set(promptIds, 0);
  for (let k = 0; k < responseKept; k++) tokens[promptIds.length + k] = responseIds[k];
  if (!truncated) tokens[length - 1] = eosId;
  lossMask.fill(1, promptIds.length);
  // Token 0 has no context to be predicted from, even when the prompt is empty.
  lossMask[0] = 0;
  return { tokens, lossMask, promptLength: promptIds.length, truncated };
}

/** An example from text: the prompt as a user turn through the chat template, then the response. */
export function buildSftExampleFromText(tokenizer: SftTokenizer, pair: { prompt: string; response: string; system?: string }, options: SftOptions): SftExample | null {
  const eos = tokenizer.specialTokens.eos;
  if (eos === undefined) throw new Error('SFT needs a tokenizer with an EOS token');
  const messages = [...(pair.system ? [{ role: 'system', content: pair.system }] : []), { role: 'user', content: pair.prompt }];
  const prompt = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true, enableThinking: options.enableThinking });
  return buildSftExample(tokenizer.encode(prompt), tokenizer.encode(pair.response), eos, options);
}

export interface SftBatch {
  /** batch * length ids, row-major, padded at the end of each row. */
  tokens: Int32Array;
  lossMask: Uint8Array;
  /** Unpadded length of each row. */
  lengths: Int32Array;
  batch: number;
  length: number;
}

/** Rows padded to the longest example in the batch; padding is never a target. */
export function collateSft(examples: readonly SftExample[], padId: number): SftBatch {
  if (examples.length === 0) throw new RangeError('cannot collate an empty batch');
  const length = Math.max(...examples.map((e) => e.tokens.length));
  const tokens = new Int32Array(examples.length * length).fill(padId);
  const lossMask = new Uint8Array(examples.length * length);
  const lengths = new Int32Array(examples.length);
  examples.forEach((e, row) => {
    tokens.set(e.tokens, row * length);
    lossMask.set(e.lossMask, row * length);
    lengths[row] = e.tokens.length;
  });
  return { tokens, lossMask, lengths, batch: examples.length, length };
}
