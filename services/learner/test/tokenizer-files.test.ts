// A checkpoint carries its tokenizer: a Hugging Face tokenizer's files and the model's
// generation_config.json go into every checkpoint the learner writes, come back when it loads
// one (after the pulled directory is gone), and the evaluation stops at every id they list.
import { DataSource } from '@temper/proto';
import { Model } from '@temper/native';
import { ByteTokenizer, createTokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoints';
import { evalItems, evalSettings, evaluateModel } from '../src/eval/evaluate';
import { StageHarness, startStageHarness, tinyConfig } from './stage-harness';

// A tiny word-level tokenizer.json, written for this test: </s> ends a document, <|end|> a turn.
const words = ['hello', 'world', 'what', 'is', 'two', 'four'];
const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: ['</s>', '<|end|>'].map((content, i) => ({ id: words.length + 1 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
  model: { type: 'WordLevel', vocab: { ...Object.fromEntries(words.map((w, i) => [w, i])), '[UNK]': words.length, '</s>': words.length + 1, '<|end|>': words.length + 2 }, unk_token: '[UNK]' },
};

describe('tokenizer files in checkpoints', () => {
  let harness: StageHarness;
  let root: string;
  beforeAll(async () => {
    harness = await startStageHarness();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-tokenizer-files-'));
  });
  afterAll(async () => {
    await harness?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('copies a Hugging Face tokenizer and generation_config.json into the checkpoint, and reads them back', async () => {
    const modelDir = path.join(root, 'hf-model');
    fs.mkdirSync(modelDir);
    fs.writeFileSync(path.join(modelDir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    fs.writeFileSync(path.join(modelDir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>', chat_template: '{% for m in messages %}{{ m.content }} <|end|> {% endfor %}' }));
    fs.writeFileSync(path.join(modelDir, 'generation_config.json'), JSON.stringify({ eos_token_id: [7, 8] }));
    const model = await Model.create({ ...tinyConfig, vocab_size: 16 }, { seed: 1, threads: 1 });
    const manifest = await saveCheckpoint(harness.store, model, {
      tokenizer: { kind: 'huggingface', path: modelDir },
      manifest: { runId: `tok-files-${process.pid}`, stage: 's', step: 0, branch: 'main' },
    });
    const names = manifest.files.map((f) => f.path).sort();
    expect(names).toEqual(expect.arrayContaining(['generation_config.json', 'temper-tokenizer.json', 'tokenizer.json', 'tokenizer_config.json']));
    const pulled = path.join(root, 'pulled');
    await harness.store.pullDir(manifest.id, pulled);
    // The spec names no path on the learner's machine: the files are the checkpoint's own.
    expect(JSON.parse(fs.readFileSync(path.join(pulled, 'temper-tokenizer.json'), 'utf8'))).toEqual({ kind: 'huggingface' });

    // The original directory may go away; the loaded checkpoint still has its tokenizer.
    fs.rmSync(modelDir, { recursive: true });
    const loaded = await loadCheckpoint(harness.store, manifest.id, { threads: 1 });
    expect(loaded.tokenizer?.kind).toBe('huggingface');
    const tokenizer = createTokenizer(loaded.tokenizer!);
    expect(tokenizer.specialTokens.eos).toBe(7);
    expect(tokenizer.stopTokenIds).toEqual([7, 8]);
    expect(tokenizer.applyChatTemplate([{ role: 'user', content: 'what is two' }])).toBe('what is two <|end|> ');
    // And the next checkpoint made from it carries the same files again.
    const again = await saveCheckpoint(harness.store, loaded.model, { tokenizer: loaded.tokenizer!, manifest: { runId: `tok-files-${process.pid}`, stage: 's', step: 1, branch: 'main' } });
    const sha = (m: typeof manifest, name: string) => m.files.find((f) => f.path === name)?.sha256;
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) expect(sha(again, name)).toBe(sha(manifest, name));
  }, 30000);

  it('stops evaluation completions at every stop id of the tokenizer', async () => {
    const plain = new ByteTokenizer();
    const model = await Model.create({ ...tinyConfig, vocab_size: plain.vocabSize }, { seed: 5, threads: 1 });
    const task = DataSource.fromPartial({ uri: 'builtin:arithmetic', fields: { difficulty: '1' } });
    const settings = { ...evalSettings(undefined, task), numPrompts: 4, passK: 0, maxNewTokens: 16 };
    const prompts = (await evalItems(task, 4, settings.seed)).map((it) => plain.encode(plain.applyChatTemplate([{ role: 'user', content: it.prompt }], { addGenerationPrompt: true })));
    const free = await model.generate({ prompts, maxNewTokens: 16, temperature: 0, stopTokens: [plain.specialTokens.eos!] });
    // A second end-of-sequence id: the token the first greedy completion writes third.
    const second = free[0].tokens[2];
    const expected = free.map((c) => {
      const at = c.tokens.indexOf(second);
      return at >= 0 ? at + 1 : c.tokens.length;
    });
    const withStop = await evaluateModel(model, new ByteTokenizer({ stopTokenIds: [second] }), settings);
    expect(withStop.response_length).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / expected.length, 10);
    expect(withStop.response_length).toBeLessThan((await evaluateModel(model, plain, settings)).response_length);
  }, 30000);
});
