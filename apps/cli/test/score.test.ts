// `temper score` (apps/cli/src/commands/score.ts): the offline scorer, on files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { score } from '../src/commands/score';

describe('temper score', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-score-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  async function run(args: { file?: string; specPath?: string }): Promise<unknown[]> {
    let text = '';
    const out = new Writable({
      write(chunk, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    expect(await score({ ...args, out })).toBe(0);
    return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  const lines = [
    { completion: '<think>6*7</think><answer>42</answer>', answer: '42' },
    { completion: '\\boxed{\\frac{1}{2}}', answer: 0.5 },
    { completion: '<think>hmm</think><answer>41</answer>', answer: '42' },
  ];

  it('writes one line per input line, in order, with the default spec', async () => {
    const file = write('c.jsonl', lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    expect(await run({ file })).toEqual([
      { reward: 1.5, components: { accuracy: 1, format: 1 } },
      { reward: 1, components: { accuracy: 1, format: 0 }, flags: ['bad_format'] },
      { reward: 0.5, components: { accuracy: 0, format: 1 } },
    ]);
  });

  it('uses a YAML spec', async () => {
    const file = write('c2.jsonl', lines.map((l) => JSON.stringify(l)).join('\n'));
    const specPath = write('rewards.yaml', 'components:\n  - name: accuracy\n    weight: 2\n  - name: repetition\n    weight: 1\n');
    const out = (await run({ file, specPath })) as { reward: number; components: Record<string, number> }[];
    expect(out.map((o) => o.reward)).toEqual([2, 2, 0]);
    expect(Object.keys(out[0].components)).toEqual(['accuracy', 'repetition']);
  });

  it('names the line of a bad input', async () => {
    const bad = [
      ['{"completion": "x", "answer": "1"}\nnot json\n', 'bad1.jsonl:2: not valid JSON'],
      ['{"completion": "x", "answer": "1"}\n{"answer": "1"}\n', 'bad2.jsonl:2: "completion" must be a string'],
      ['{"completion": "x"}\n', 'bad3.jsonl:1: "answer" must be a string or a number'],
      ['[1, 2]\n', 'bad4.jsonl:1: expected a JSON object'],
      ['{"completion": "x", "answer": "1"}\n\n{"completion": "x", "answer": "1"}\n', 'bad5.jsonl:2: empty line'],
    ];
    for (const [i, [text, message]] of bad.entries()) {
      const file = write(`bad${i + 1}.jsonl`, text);
      await expect(score({ file, out: new Writable({ write: (_c, _e, cb) => cb() }) })).rejects.toThrow(message);
    }
  });

  it('names the field of a bad spec, and a missing file', async () => {
    const file = write('ok.jsonl', JSON.stringify(lines[0]) + '\n');
    const specPath = write('bad.yaml', 'components:\n  - name: accuracy\n    options: { tolerance: 1 }\n');
    await expect(score({ file, specPath })).rejects.toThrow('bad.yaml.components[0].options.tolerance: unknown option');
    await expect(score({ file: path.join(dir, 'nope.jsonl') })).rejects.toThrow('no such file');
    await expect(score({})).rejects.toThrow('usage: temper score');
  });
});
