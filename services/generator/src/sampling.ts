// From the wire to the engine and back: checks prompts and sampling parameters (errors
// name the field), turns them into the engine's options, and turns the engine's completions
// into proto Completions (stop strings applied, text decoded).
import type { Completion as EngineCompletion } from '@temper/native';
import { Completion, FinishReason, Prompt, SamplingParams } from '@temper/proto';
import type { Tokenizer } from '@temper/tokenizers';
import { invalidArgument } from './errors';

/** What the served model accepts. */
export interface ModelLimits {
  vocabSize: number;
  maxPositions: number;
}

/** Checked sampling parameters with proto defaults resolved (top_p 0 is 1, n 0 is 1). */
export interface Sampling {
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  stopTokenIds: number[];
  stopStrings: string[];
  seed: number;
  n: number;
}

export const MAX_SAMPLES_PER_PROMPT = 4096;

export function checkSampling(s: SamplingParams | undefined, limits: ModelLimits, field = 'sampling'): Sampling {
  if (!s) throw invalidArgument(field, 'is required (at least max_new_tokens)');
  if (!Number.isFinite(s.temperature) || s.temperature < 0) throw invalidArgument(`${field}.temperature`, `must be >= 0 (got ${s.temperature})`);
  const topP = s.topP === 0 ? 1 : s.topP;
  if (!(topP > 0 && topP <= 1)) throw invalidArgument(`${field}.top_p`, `must be in (0, 1] (0 means 1; got ${s.topP})`);
  if (!Number.isInteger(s.topK) || s.topK < 0) throw invalidArgument(`${field}.top_k`, `must be >= 0 (got ${s.topK})`);
  if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 1) throw invalidArgument(`${field}.max_new_tokens`, `must be > 0 (got ${s.maxNewTokens})`);
  if (s.maxNewTokens >= limits.maxPositions) {
    throw invalidArgument(`${field}.max_new_tokens`, `(${s.maxNewTokens}) must be below the model's ${limits.maxPositions} positions`);
  }
  s.stopTokenIds.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
      throw invalidArgument(`${field}.stop_token_ids[${i}]`, `(${id}) is not a token id of this model (vocabulary ${limits.vocabSize})`);
    }
  });
  s.stopStrings.forEach((t, i) => {
    if (t.length === 0) throw invalidArgument(`${field}.stop_strings[${i}]`, 'must not be empty');
  });
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) throw invalidArgument(`${field}.seed`, `must be an integer in [0, 2^53) (got ${s.seed})`);
  const n = s.n === 0 ? 1 : s.n;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SAMPLES_PER_PROMPT) throw invalidArgument(`${field}.n`, `must be in [1, ${MAX_SAMPLES_PER_PROMPT}] (0 means 1; got ${s.n})`);
  return {
    temperature: s.temperature,
    topP,
    topK: s.topK,
    maxNewTokens: s.maxNewTokens,
    stopTokenIds: [...s.stopTokenIds],
    stopStrings: [...s.stopStrings],
    seed: s.seed,
    n,
  };
}

/** The prompt's token ids: its ids when it has them, else its text encoded as is (no BOS added). */
export function promptTokens(p: Prompt | undefined, tokenizer: Tokenizer, limits: ModelLimits, maxNewTokens: number, field = 'prompt'): Int32Array {
  if (!p) throw invalidArgument(field, 'is required');
  let ids: Int32Array;
  if (p.tokenIds.length > 0) {
    p.tokenIds.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
        throw invalidArgument(`${field}.token_ids[${i}]`, `(${id}) is not a token id of this model (vocabulary ${limits.vocabSize})`);
      }
    });
    ids = Int32Array.from(p.tokenIds);
  } else {
    if (p.text.length === 0) throw invalidArgument(field, 'needs text or token_ids');
    ids = tokenizer.encode(p.text);
    if (ids.length === 0) throw invalidArgument(`${field}.text`, 'encodes to no tokens');
    const bad = ids.findIndex((id) => id >= limits.vocabSize);
    if (bad >= 0) throw invalidArgument(`${field}.text`, `encodes to token ${ids[bad]}, outside the model's vocabulary of ${limits.vocabSize} (tokenizer and model do not match)`);
  }
  if (ids.length + maxNewTokens > limits.maxPositions) {
    throw invalidArgument(field, `has ${ids.length} tokens; with max_new_tokens ${maxNewTokens} that exceeds the model's ${limits.maxPositions} positions`);
  }
  return ids;
}

/** Stop tokens for the engine: the request's and the model's (its EOS and generation_config.json's). */
export function stopTokens(s: Sampling, tokenizer: Tokenizer): number[] {
  return [...new Set([...s.stopTokenIds, ...tokenizer.stopTokenIds])];
}

/**
 * One engine completion as the wire has it. `maxNewTokens` may be below what the engine was
 * asked for (a batch samples to its longest member's limit): the tail is cut and the
 * completion ends by length, exactly as if it had been sampled alone. A stop string ends the
 * completion at the token that completes it; the text keeps the stop string, so text and
 * token ids say the same thing.
 */
export function toCompletion(c: EngineCompletion, tokenizer: Tokenizer, maxNewTokens: number, stopStrings: string[]): Completion {
  let tokens = c.tokens;
  let finish = c.finishReason;
  if (tokens.length > maxNewTokens) {
    tokens = tokens.subarray(0, maxNewTokens);
    finish = 'length';
  }
  const decode = (ids: Int32Array) => tokenizer.decode(ids, { skipSpecialTokens: true });
  let text = decode(tokens);
  if (stopStrings.length > 0 && firstStop(text, stopStrings) !== undefined) {
    // The shortest prefix whose text holds a stop string (containment only grows with the prefix).
    let lo = 1;
    let hi = tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (firstStop(decode(tokens.subarray(0, mid)), stopStrings) !== undefined) hi = mid;
      else lo = mid + 1;
    }
    tokens = tokens.subarray(0, lo);
    text = decode(tokens);
    text = text.slice(0, firstStop(text, stopStrings)!);
    finish = 'stop';
  }
  return Completion.fromPartial({
    text,
    tokenIds: Array.from(tokens),
    logprobs: Array.from(c.logprobs.subarray(0, tokens.length)),
    finishReason: finish === 'stop' ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH,
    tokenPolicyVersions: [],
  });
}

/** Where the earliest stop string in `text` ends, or undefined. */
function firstStop(text: string, stops: string[]): number | undefined {
  let best: number | undefined;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (best === undefined || at + s.length < best)) best = at + s.length;
  }
  return best;
}
