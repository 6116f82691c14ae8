// The one face every tokenizer in Temper shows: the engine sees only ids, the tasks and
// rewards see only text, and this is where the two meet.

/** One turn of a conversation, as chat templates expect it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  /** An assistant turn's reasoning, kept apart from its answer (Qwen3's templates read it). */
  reasoning_content?: string;
  /** An assistant turn's tool calls ({ function: { name, arguments } }), as templates expect them. */
  tool_calls?: unknown[];
}

export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn so the model continues as the assistant. */
  addGenerationPrompt?: boolean;
  /**
   * The template's enable_thinking switch (Qwen3: false closes an empty <think></think> in the
   * generation prompt, so the model answers without reasoning). Unset: the template's default.
   */
  enableThinking?: boolean;
  /** More variables for the template, e.g. { tools: [...] }. */
  variables?: Record<string, unknown>;
}

/** Ids of the special tokens a tokenizer has; a missing one is undefined. */
export interface SpecialTokenIds {
  pad?: number;
  bos?: number;
  eos?: number;
  unk?: number;
  think?: number;
  thinkEnd?: number;
  answer?: number;
  answerEnd?: number;
}

export interface Tokenizer {
  /** Number of ids the model's embedding must hold (every id from encode is below it). */
  readonly vocabSize: number;
  readonly specialTokens: SpecialTokenIds;
  /**
   * Ids that end a completion: the EOS token and every eos_token_id of the model's
   * generation_config.json (Qwen ends a turn with <|im_end|> and a document with
   * <|endoftext|>, Llama 3 with <|eot_id|> and <|end_of_text|>).
   */
  readonly stopTokenIds: readonly number[];
  /** Ids of `text`; special-token strings in the text become their single ids. No BOS/EOS is added. */
  encode(text: string): Int32Array;
  /** Text of `ids`; with skipSpecialTokens, special tokens are left out. */
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** The id of one token given as text (a special token, or a vocabulary entry), or undefined. */
  tokenToId(token: string): number | undefined;
  /** The conversation rendered as the model was trained to see it (text, not ids). */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}
