// SFT examples from a run spec's data sources: prompt/response pairs (built-in tasks with
// their reference completions, QA corpora, instructions, JSONL files, or a dataset's prompts
// with their worked solutions), each source drawn by weight, the prompt rendered through the
// tokenizer's chat template exactly as the GRPO stage and evaluation present it, the loss on
// the response and EOS only.
import { buildSftExampleFromText, createRng, loadJsonlPairs, openDataset, openPairs, PromptResponse, SftExample } from '@temper/data';
import { ChatSpec, DataSource } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';
import { datasetOptions } from '../prompts';
import { sourceSpecs } from './packed-batches';

export interface SftExampleOptions {
  /** Examples to draw; 0: every pair of the sources when all are files or datasets, else 256. */
  numExamples: number;
  maxSeqLen: number;
  seed: number | string;
  /** How prompts are rendered (the run's model.chat). */
  chat?: ChatSpec;
}

export const defaultSftSource = DataSource.fromPartial({ name: 'arithmetic', uri: 'builtin:arithmetic', weight: 1, fields: { difficulty: '1' } });

export interface SftExamples {
  examples: SftExample[];
  /** Pairs dropped because prompt + response did not fit max_seq_len. */
  dropped: number;
}

interface PairSource {
  weight: number;
  /** Pairs in one pass over a file or dataset (undefined: endless). */
  size(): Promise<number | undefined>;
  next(): Promise<PromptResponse>;
}

export async function sftExamples(sources: readonly DataSource[], tokenizer: Tokenizer, options: SftExampleOptions): Promise<SftExamples> {
  const pairs = (sources.length ? sources : [defaultSftSource]).map((s, i) => pairSource(s, i, options.seed));
  let count = options.numExamples;
  if (!count) {
    const sizes = await Promise.all(pairs.map((p) => p.size()));
    count = sizes.every((n) => n !== undefined) ? sizes.reduce((a, n) => a! + n!, 0)! : 256;
  }
  const total = pairs.reduce((a, s) => a + s.weight, 0);
  const rng = createRng('sft-examples', options.seed);
  const examples: SftExample[] = [];
  let dropped = 0;
  const sft = { maxLength: options.maxSeqLen, enableThinking: options.chat?.enableThinking };
  // Bounded: a source whose every pair is too long must not loop forever.
  for (let draws = 0; examples.length < count && draws < count * 20; draws++) {
    let u = rng.next() * total;
    let i = 0;
    while (i < pairs.length - 1 && u >= pairs[i].weight) u -= pairs[i++].weight;
    const pair = await pairs[i].next();
    const example = buildSftExampleFromText(tokenizer, { ...pair, system: options.chat?.systemPrompt || undefined }, sft);
    if (example) examples.push(example);
    else dropped++;
  }
  if (examples.length === 0) throw new Error(`SFT: no example fits max_seq_len ${options.maxSeqLen}`);
  return { examples, dropped };
}

function pairSource(source: DataSource, index: number, seed: number | string): PairSource {
  const weight = source.weight || 1;
  if (source.dataset) {
    const rows = openDataset(datasetOptions(source));
    return {
      weight,
      size: () => rows.size(),
      async next() {
        const item = await rows.next();
        if (item.response === undefined) throw new Error(`${item.where}: no response for SFT (name its column in dataset.fields.response)`);
        return { prompt: item.prompt, response: item.response, source: source.name };
      },
    };
  }
  const [spec] = sourceSpecs([source]).map((s) => ({ ...s, name: s.name || `source-${index}` }));
  const stream = openPairs(spec, { seed });
  const file = !spec.uri.startsWith('builtin:');
  return {
    weight,
    size: async () => (file ? loadJsonlPairs(spec.uri, { prompt: spec.fields?.prompt ?? 'prompt', response: spec.fields?.response ?? 'response' }).length : undefined),
    next: async () => stream.next().value as PromptResponse,
  };
}
