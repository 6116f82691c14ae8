// SFT examples from a run spec's data sources: prompt/response pairs (built-in tasks with
// their reference completions, QA corpora, instructions, or JSONL files), each source drawn by
// weight, the prompt rendered through the tokenizer's chat template exactly as the GRPO stage
// and evaluation present it, the loss on the response and EOS only.
import { buildSftExampleFromText, createRng, loadJsonlPairs, openPairs, PromptResponse, SftExample } from '@temper/data';
import { DataSource } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';
import { sourceSpecs } from './packed-batches';

export interface SftExampleOptions {
  /** Examples to draw; 0: every pair of the sources when all are files, else 256. */
  numExamples: number;
  maxSeqLen: number;
  seed: number | string;
}

export const defaultSftSource = DataSource.fromPartial({ name: 'arithmetic', uri: 'builtin:arithmetic', weight: 1, fields: { difficulty: '1' } });

export interface SftExamples {
  examples: SftExample[];
  /** Pairs dropped because prompt + response did not fit max_seq_len. */
  dropped: number;
}

export function sftExamples(sources: readonly DataSource[], tokenizer: Tokenizer, options: SftExampleOptions): SftExamples {
  const specs = sourceSpecs(sources.length ? sources : [defaultSftSource]).map((s) => ({ ...s, weight: s.weight || 1 }));
  const files = specs.every((s) => !s.uri.startsWith('builtin:'));
  let count = options.numExamples;
  if (!count) {
    count = files
      ? specs.reduce((n, s) => n + loadJsonlPairs(s.uri, { prompt: s.fields?.prompt ?? 'prompt', response: s.fields?.response ?? 'response' }).length, 0)
      : 256;
  }
  const streams = specs.map((s) => openPairs(s, { seed: options.seed }));
  const total = specs.reduce((a, s) => a + s.weight, 0);
  const rng = createRng('sft-examples', options.seed);
  const examples: SftExample[] = [];
  let dropped = 0;
  // Bounded: a source whose every pair is too long must not loop forever.
  for (let draws = 0; examples.length < count && draws < count * 20; draws++) {
    let u = rng.next() * total;
    let i = 0;
    while (i < specs.length - 1 && u >= specs[i].weight) u -= specs[i++].weight;
    const pair = streams[i].next().value as PromptResponse;
    const example = buildSftExampleFromText(tokenizer, pair, { maxLength: options.maxSeqLen });
    if (example) examples.push(example);
    else dropped++;
  }
  if (examples.length === 0) throw new Error(`SFT: no example fits max_seq_len ${options.maxSeqLen}`);
  return { examples, dropped };
}
