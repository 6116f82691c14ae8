// Chat templates are Jinja, as in Hugging Face's tokenizer_config.json: the model's own
// template decides how turns are wrapped, so Temper renders it rather than guessing.
// @huggingface/jinja is a sandboxed interpreter (no access to the host), which matters
// because templates come with downloaded model files.
import type * as Jinja from '@huggingface/jinja' with { 'resolution-mode': 'import' };
import type { ChatMessage, ChatTemplateOptions } from './types';

// The package is an ES module that also ships a CommonJS build; this workspace compiles to
// CommonJS under module=node16, where TypeScript refuses a value import of an ES module's
// types, so the types come in type-only and the value through require (which picks the .cjs).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Template } = require('@huggingface/jinja') as typeof Jinja;

export interface ChatTemplateContext {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
}

/** A compiled template: render(messages) gives the conversation as text. */
export interface ChatTemplate {
  readonly source: string;
  render(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}

/**
 * Compile `source` once; a syntax error is reported here (with `origin`, e.g. the file it
 * came from) rather than at the first render.
 */
// raise_exception(), which templates call to refuse a conversation they cannot express, is
// built into the interpreter's environment; its error surfaces from render with `origin`.
export function compileChatTemplate(source: string, context: ChatTemplateContext = {}, origin = 'chat template'): ChatTemplate {
  let template: Jinja.Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new Error(`${origin}: cannot parse the Jinja template: ${(err as Error).message}`);
  }
  return {
    source,
    render(messages, options = {}) {
      for (const [i, m] of messages.entries()) {
        if (typeof m?.role !== 'string' || typeof m?.content !== 'string') {
          throw new TypeError(`${origin}: message ${i} needs a string role and a string content`);
        }
      }
      try {
        // What transformers' apply_chat_template hands a template: the special tokens, the
        // generation-prompt switch and any further keyword (enable_thinking, tools, ...).
        return template.render({
          ...options.variables,
          ...(options.enableThinking === undefined ? {} : { enable_thinking: options.enableThinking }),
          // Plain copies: the interpreter reads properties, and callers' objects stay untouched.
          messages: messages.map((m) => ({ ...m })),
          add_generation_prompt: options.addGenerationPrompt ?? false,
          bos_token: context.bosToken ?? '',
          eos_token: context.eosToken ?? '',
          pad_token: context.padToken ?? '',
          unk_token: context.unkToken ?? '',
        });
      } catch (err) {
        throw new Error(`${origin}: rendering failed: ${(err as Error).message}`);
      }
    },
  };
}
