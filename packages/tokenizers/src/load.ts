// One entry point for a run spec's `tokenizer` field, so services need not know the kinds.
import { ByteTokenizer, type ByteTokenizerOptions } from './byte-tokenizer';
import { loadHuggingFaceTokenizer } from './huggingface';
import type { Tokenizer } from './types';

export type TokenizerSpec =
  | ({ kind: 'byte' } & ByteTokenizerOptions)
  | {
      kind: 'huggingface';
      /** model directory or tokenizer.json path */
      path: string;
      chatTemplate?: string;
      /** More ids that end a completion, besides those the directory's generation_config.json lists. */
      stopTokenIds?: readonly number[];
    };

export function createTokenizer(spec: TokenizerSpec): Tokenizer {
  switch (spec.kind) {
    case 'byte':
      return new ByteTokenizer(spec);
    case 'huggingface':
      return loadHuggingFaceTokenizer(spec.path, { chatTemplate: spec.chatTemplate, stopTokenIds: spec.stopTokenIds });
    default:
      throw new Error(`unknown tokenizer kind: ${(spec as { kind: unknown }).kind}`);
  }
}
