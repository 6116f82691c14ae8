// Which tokenizer goes with a model directory: temper-tokenizer.json (a spec) first, then a
// Hugging Face tokenizer.json; anything else is an error that says what is missing.
import { ByteTokenizer, loadModelTokenizer as loadTokenizerForModel } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// A tiny word-level tokenizer.json, written for this test.
const wordLevel = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [{ id: 3, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: { type: 'WordLevel', vocab: { hello: 0, world: 1, '[UNK]': 2, '</s>': 3 }, unk_token: '[UNK]' },
};

describe('loadModelTokenizer', () => {
  let root: string;
  const dir = (name: string, files: Record<string, unknown>) => {
    const d = path.join(root, name);
    fs.mkdirSync(d, { recursive: true });
    for (const [f, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
      fs.writeFileSync(path.join(d, f), typeof content === 'string' ? content : JSON.stringify(content));
    }
    return d;
  };

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-tokenizer-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reads a byte tokenizer spec', () => {
    const t = loadTokenizerForModel(dir('byte', { 'temper-tokenizer.json': { kind: 'byte' } }));
    const ref = new ByteTokenizer();
    expect(t.vocabSize).toBe(ref.vocabSize);
    expect(Array.from(t.encode('A<eos>'))).toEqual([65, ref.specialTokens.eos]);
  });

  it('passes spec options through', () => {
    const t = loadTokenizerForModel(dir('byte-extra', { 'temper-tokenizer.json': { kind: 'byte', extraSpecialTokens: ['<tool>'] } }));
    expect(t.vocabSize).toBe(new ByteTokenizer().vocabSize + 1);
  });

  it('loads a Hugging Face tokenizer.json, directly or through a spec', () => {
    const hf = loadTokenizerForModel(dir('hf', { 'tokenizer.json': wordLevel }));
    expect(Array.from(hf.encode('hello world'))).toEqual([0, 1]);
    const viaSpec = loadTokenizerForModel(dir('hf-spec', { 'temper-tokenizer.json': { kind: 'huggingface', path: 'tok/tokenizer.json' }, 'tok/tokenizer.json': wordLevel }));
    expect(Array.from(viaSpec.encode('world hello'))).toEqual([1, 0]);
  });

  it('stops at every eos_token_id of the directory\'s generation_config.json, whatever the tokenizer', () => {
    const eos = new ByteTokenizer().specialTokens.eos!;
    const byte = loadTokenizerForModel(dir('byte-gen', { 'temper-tokenizer.json': { kind: 'byte' }, 'generation_config.json': { eos_token_id: [eos, 65] } }));
    expect(byte.stopTokenIds).toEqual([eos, 65]);
    const hf = loadTokenizerForModel(dir('hf-gen', { 'tokenizer.json': wordLevel, 'tokenizer_config.json': { eos_token: '</s>' }, 'generation_config.json': { eos_token_id: 1 } }));
    expect(hf.stopTokenIds).toEqual([3, 1]);
    const nested = loadTokenizerForModel(dir('hf-spec-gen', { 'temper-tokenizer.json': { kind: 'huggingface', path: 'tok' }, 'tok/tokenizer.json': wordLevel, 'generation_config.json': { eos_token_id: [0, 1] } }));
    expect(nested.stopTokenIds).toEqual([0, 1]);
    expect(() => loadTokenizerForModel(dir('gen-bad', { 'temper-tokenizer.json': { kind: 'byte' }, 'generation_config.json': { eos_token_id: 'x' } }))).toThrow(
      /generation_config\.json: eos_token_id must be a token id or a list of them/,
    );
    expect(() => loadTokenizerForModel(dir('gen-past', { 'temper-tokenizer.json': { kind: 'byte' }, 'generation_config.json': { eos_token_id: 4000 } }))).toThrow(/stop token 4000/);
  });

  it('prefers the spec when both are present', () => {
    const t = loadTokenizerForModel(dir('both', { 'temper-tokenizer.json': { kind: 'byte' }, 'tokenizer.json': wordLevel }));
    expect(t.vocabSize).toBe(new ByteTokenizer().vocabSize);
  });

  it('says what is missing or wrong', () => {
    expect(() => loadTokenizerForModel(dir('none', { 'config.json': {} }))).toThrow(/has no tokenizer: it needs temper-tokenizer\.json .* or tokenizer\.json/);
    expect(() => loadTokenizerForModel(dir('bad-json', { 'temper-tokenizer.json': '{not json' }))).toThrow(/temper-tokenizer\.json is not valid JSON/);
    expect(() => loadTokenizerForModel(dir('bad-kind', { 'temper-tokenizer.json': { kind: 'sentencepiece' } }))).toThrow(/kind must be "byte" or "huggingface" \(got "sentencepiece"\)/);
    expect(() => loadTokenizerForModel(dir('escape', { 'temper-tokenizer.json': { kind: 'huggingface', path: '../hf/tokenizer.json' } }))).toThrow(/path must stay inside the model directory/);
  });
});
