// A conversation as token ids, built the way the chat template renders it while keeping the
// model's own tokens exactly as sampled (re-encoding a decoded turn can give other ids, and
// the loss needs the ids the log-probs belong to). The first messages are rendered whole;
// after each turn only the template's text between the end of that assistant turn and the
// next generation prompt is encoded and appended: the turn's closing, the observations, the
// opening of the next assistant turn.
import { ByteTokenizer, type ChatMessage, type Tokenizer } from '@temper/tokenizers';
import type { ToolCallFormat } from './tool-calls';
import type { ToolSchema } from './types';

export interface ChatOptions {
  /** A system message before the environment's first messages; empty: none. */
  systemPrompt?: string;
  enableThinking?: boolean;
}

// Stands in for an assistant turn's content while the template renders the text around it.
const TURN_MARKER = 'TEMPERASSISTANTTURNMARKER';

export class ConversationRenderer {
  readonly format: ToolCallFormat;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly chat: ChatOptions = {},
    format?: ToolCallFormat,
  ) {
    this.format = format ?? toolCallFormatOf(tokenizer);
  }

  /** The conversation's opening through the generation prompt, as text. */
  opening(messages: readonly ChatMessage[], tools: readonly ToolSchema[]): string {
    const all = this.chat.systemPrompt ? [{ role: 'system', content: this.chat.systemPrompt }, ...messages] : [...messages];
    return this.tokenizer.applyChatTemplate(all, {
      addGenerationPrompt: true,
      enableThinking: this.chat.enableThinking,
      variables: tools.length > 0 && this.format === 'hermes' ? { tools } : {},
    });
  }

  /**
   * The text that follows a sampled assistant turn: the rest of its closing (what the stop
   * token that ended it did not already say), the observations, the next generation prompt.
   * `endedBy`: the stop token that ended the turn, if one did.
   */
  afterTurn(observations: readonly ChatMessage[], endedBy: number | undefined): string {
    const rendered = this.tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }, { role: 'assistant', content: TURN_MARKER }, ...observations], {
      addGenerationPrompt: true,
      enableThinking: this.chat.enableThinking,
    });
    const at = rendered.lastIndexOf(TURN_MARKER);
    if (at < 0) throw new Error('the chat template does not render an assistant turn\'s content; cannot append observations');
    let rest = rendered.slice(at + TURN_MARKER.length);
    if (endedBy !== undefined) {
      const stop = this.tokenizer.decode([endedBy]);
      if (stop && rest.startsWith(stop)) rest = rest.slice(stop.length);
    }
    return rest;
  }
}

/** Hugging Face tokenizers (Qwen, Hermes templates) use "hermes"; the byte tokenizer "compact". */
export function toolCallFormatOf(tokenizer: Tokenizer): ToolCallFormat {
  return tokenizer instanceof ByteTokenizer ? 'compact' : 'hermes';
}
