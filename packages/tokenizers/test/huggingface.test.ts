import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTokenizer, HuggingFaceTokenizer, loadHuggingFaceTokenizer } from '@temper/tokenizers';

// GPT-2's reversible map from bytes to printable characters, which byte-level BPE vocabularies
// are written in: printable Latin-1 bytes map to themselves, the rest to code points from 256 up.
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return map;
}

// A small but complete byte-level BPE tokenizer.json: all 256 byte symbols (so any text
// encodes), a handful of merges, and added tokens in the ChatML style plus the format markers.
function makeTokenizerJson() {
  const byteChars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  byteChars.forEach((c, i) => (vocab[c] = i));
  const merges: string[] = [];
  const addMerge = (a: string, b: string) => {
    merges.push(`${a} ${b}`);
    vocab[a + b] = Object.keys(vocab).length;
  };
  const G = byteChars[32]; // 'Ġ', the space byte
  addMerge('t', 'h');
  addMerge('th', 'e');
  addMerge(G, 'the');
  addMerge('1', '2');
  addMerge('a', 'n');
  addMerge('an', 's');
  const base = Object.keys(vocab).length;
  const added = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<answer>', '</answer>'];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((content, i) => ({
      id: base + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: content.startsWith('<|'),
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

// A ChatML template in the shape Qwen models ship (written here for the test).
const chatml =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const config = { bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: chatml };

describe('HuggingFaceTokenizer on a tokenizer.json made here', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-tok-'));
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(makeTokenizerJson()));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('applies the merges and counts the vocabulary with added tokens', () => {
    const tok = loadHuggingFaceTokenizer(dir);
    expect(tok.vocabSize).toBe(256 + 6 + 7);
    const ids = Array.from(tok.encode('the 12 ans'));
    expect(ids).toEqual([tok.tokenToId('the'), tok.tokenToId('Ġ'), tok.tokenToId('12'), tok.tokenToId('Ġ'), tok.tokenToId('ans')]);
    expect(Array.from(tok.encode(' the'))).toEqual([tok.tokenToId('Ġthe')]);
  });

  it('round-trips arbitrary UTF-8 through the byte-level model', () => {
    const tok = loadHuggingFaceTokenizer(path.join(dir, 'tokenizer.json'));
    const samples = ['', 'plain ascii', 'naïve façade', '数学 と 算数', 'emoji 🙂🚀 and \u{10FFFD}', 'tabs\tand\nnewlines\r\n', 'the theme of 12 + 12'];
    for (const s of samples) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('reads special tokens from the config and keeps markers as single ids', () => {
    const tok = loadHuggingFaceTokenizer(dir);
    expect(tok.specialTokens.eos).toBe(tok.tokenToId('<|im_end|>'));
    expect(tok.specialTokens.pad).toBe(tok.tokenToId('<|endoftext|>'));
    expect(tok.specialTokens.bos).toBeUndefined();
    const { think, thinkEnd, answer, answerEnd } = tok.specialTokens;
    expect([think, thinkEnd, answer, answerEnd].every((x) => typeof x === 'number')).toBe(true);
    const ids = Array.from(tok.encode('<think>the</think><answer>12</answer>'));
    expect(ids).toEqual([think, tok.tokenToId('the'), thinkEnd, answer, tok.tokenToId('12'), answerEnd]);
    const withEos = [...ids, tok.specialTokens.eos!];
    expect(tok.decode(withEos)).toBe('<think>the</think><answer>12</answer><|im_end|>');
    expect(tok.decode(withEos, { skipSpecialTokens: true })).toBe('<think>the</think><answer>12</answer>');
  });

  it('renders the Jinja chat template from tokenizer_config.json', () => {
    const tok = loadHuggingFaceTokenizer(dir);
    const text = tok.applyChatTemplate(
      [
        { role: 'system', content: 'Think, then answer.' },
        { role: 'user', content: 'What is 12+12?' },
      ],
      { addGenerationPrompt: true },
    );
    expect(text).toBe('<|im_start|>system\nThink, then answer.<|im_end|>\n<|im_start|>user\nWhat is 12+12?<|im_end|>\n<|im_start|>assistant\n');
    const ids = Array.from(tok.encode(text));
    expect(ids.filter((i) => i === tok.tokenToId('<|im_start|>'))).toHaveLength(3);
    expect(tok.decode(ids)).toBe(text);
  });

  it('prefers chat_template.jinja and explicit templates, and raises template errors with the file named', () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-tok-'));
    try {
      fs.copyFileSync(path.join(dir, 'tokenizer.json'), path.join(other, 'tokenizer.json'));
      fs.writeFileSync(path.join(other, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|im_end|>' }));
      expect(() => loadHuggingFaceTokenizer(other).applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/has no chat template/);
      fs.writeFileSync(
        path.join(other, 'chat_template.jinja'),
        "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools here') }}{% endif %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}",
      );
      const tok = loadHuggingFaceTokenizer(other);
      expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<user>x<|im_end|>');
      expect(() => tok.applyChatTemplate([{ role: 'tool', content: 'x' }])).toThrow(/tokenizer\.json chat template: rendering failed: no tools here/);
      const viaSpec = createTokenizer({ kind: 'huggingface', path: other, chatTemplate: '{{ messages[0].content }}!' });
      expect(viaSpec.applyChatTemplate([{ role: 'user', content: 'hey' }])).toBe('hey!');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('renders a template with whitespace control, loop state, a system default and extra variables', () => {
    // Written here in the style real model templates use.
    const template = [
      "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] %}{%- set rest = messages[1:] %}",
      "{%- else %}{%- set system = 'You are helpful.' %}{%- set rest = messages %}{%- endif %}",
      "{{- '<|im_start|>system\\n' + system.strip() + '<|im_end|>\\n' }}",
      '{%- for m in rest %}',
      "{%- if m.role not in ['user', 'assistant'] %}{{- raise_exception('role ' + m.role + ' is not supported') }}{%- endif %}",
      "{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>' }}{%- if not loop.last %}{{- '\\n' }}{%- endif %}",
      '{%- endfor %}',
      "{%- if add_generation_prompt %}{{- '\\n<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think></think>' }}{%- endif %}{%- endif %}",
    ].join('\n');
    const tok = new HuggingFaceTokenizer(makeTokenizerJson(), { eos_token: '<|im_end|>', chat_template: template });
    const user = [{ role: 'user', content: '12+12?' }];
    expect(tok.applyChatTemplate(user)).toBe('<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n12+12?<|im_end|>');
    expect(tok.applyChatTemplate([{ role: 'system', content: '  Be terse. ' }, ...user], { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\n12+12?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(tok.applyChatTemplate(user, { addGenerationPrompt: true, variables: { enable_thinking: false } })).toMatch(/assistant\n<think><\/think>$/);
    expect(() => tok.applyChatTemplate([{ role: 'tool', content: '{}' }])).toThrow(/role tool is not supported/);
  });

  it('picks the default of several named templates', () => {
    const tok = new HuggingFaceTokenizer(makeTokenizerJson(), {
      chat_template: [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: 'plain:{{ messages | length }}' },
      ],
    });
    expect(tok.applyChatTemplate([{ role: 'user', content: 'a' }])).toBe('plain:1');
  });

  it('names the file when the input is missing or not a tokenizer', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-tok-'));
    try {
      expect(() => loadHuggingFaceTokenizer(bad)).toThrow(/tokenizer\.json: no such file/);
      fs.writeFileSync(path.join(bad, 'tokenizer.json'), '{"model": ');
      expect(() => loadHuggingFaceTokenizer(bad)).toThrow(new RegExp(`${path.join(bad, 'tokenizer.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
      fs.writeFileSync(path.join(bad, 'tokenizer.json'), '{"version": "1.0"}');
      expect(() => loadHuggingFaceTokenizer(bad)).toThrow(/not a tokenizer\.json/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
    const tok = new HuggingFaceTokenizer(makeTokenizerJson());
    expect(() => tok.decode([-3])).toThrow(/not a token id/);
    const the = tok.tokenToId('the')!;
    expect(tok.decode([the, tok.vocabSize + 5, the])).toBe('the\ufffdthe');
  });
});

// A SentencePiece-style tokenizer.json (the Llama / Mistral shape): "▁" marks spaces, a BPE
// over pieces, and byte fallback (<0xNN> tokens) for anything outside the pieces.
function makeSentencePieceJson() {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const merges: string[] = [];
  for (const c of ['▁', 'a', 'e', 'h', 'l', 'o', 't', '1', '2', '+', '=', '4']) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of [['▁', 't'], ['h', 'e'], ['▁t', 'he'], ['l', 'l'], ['ll', 'o'], ['▁', 'he'], ['▁he', 'llo']]) {
    merges.push(`${a} ${b}`);
    vocab[a + b] = Object.keys(vocab).length;
  }
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

describe('HuggingFaceTokenizer on a SentencePiece-style tokenizer.json made here', () => {
  const tok = new HuggingFaceTokenizer(makeSentencePieceJson(), { bos_token: '<s>', eos_token: '</s>' });

  it('merges pieces and falls back to bytes, round-tripping any UTF-8', () => {
    expect(Array.from(tok.encode('hello the'))).toEqual([tok.tokenToId('▁hello'), tok.tokenToId('▁the')]);
    for (const s of ['hello the', 'héllo 数学 🙂', '1+2=4', 'tabs\tand\nlines', 'a  b']) expect(tok.decode(tok.encode(s))).toBe(s);
    // é is not a piece: its two UTF-8 bytes come out as byte tokens.
    const ids = Array.from(tok.encode('é'));
    expect(ids.slice(-2)).toEqual([tok.tokenToId('<0xC3>'), tok.tokenToId('<0xA9>')]);
  });

  it('adds BOS only when asked, and reads special ids from the config', () => {
    expect(tok.specialTokens.bos).toBe(1);
    expect(tok.specialTokens.eos).toBe(2);
    expect(tok.encode('hello', { addSpecialTokens: true })[0]).toBe(1);
    expect(tok.encode('hello')[0]).not.toBe(1);
    expect(tok.decode([1, ...tok.encode('hello'), 2], { skipSpecialTokens: true })).toBe('hello');
    expect(tok.vocabSize).toBe(3 + 256 + 12 + 7);
  });
});
