// The data roots on their own: what resolves inside, what is refused and why (the API test,
// test/learner-api.test.ts, checks the same through the learner's gRPC port).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { confineSpec, DataRoots } from '../src/data-roots';
import { runSpecFromYaml, SpecError } from '../src/spec';

describe('data roots', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'temper-roots-')));
    for (const d of ['a/sub', 'b', 'outside']) fs.mkdirSync(path.join(tmp, d), { recursive: true });
    for (const f of ['a/sub/x.jsonl', 'b/y.jsonl', 'outside/z.jsonl']) fs.writeFileSync(path.join(tmp, f), '{}\n');
    // A root that is itself a link, and a link inside a root to another root.
    fs.symlinkSync(path.join(tmp, 'b'), path.join(tmp, 'b-link'));
    fs.symlinkSync(path.join(tmp, 'b', 'y.jsonl'), path.join(tmp, 'a', 'to-b.jsonl'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const reason = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      if (err instanceof SpecError) return err.problems.join('\n');
      throw err;
    }
    return 'accepted';
  };

  it('resolves paths inside any root, relative ones from the first, links followed', () => {
    const roots = new DataRoots([path.join(tmp, 'a'), path.join(tmp, 'b-link')]);
    expect(roots.resolve('sub/x.jsonl', 'f')).toBe(path.join(tmp, 'a/sub/x.jsonl'));
    expect(roots.resolve('sub/../sub/x.jsonl', 'f')).toBe(path.join(tmp, 'a/sub/x.jsonl'));
    expect(roots.resolve(path.join(tmp, 'b-link', 'y.jsonl'), 'f')).toBe(path.join(tmp, 'b/y.jsonl'));
    expect(roots.resolve('to-b.jsonl', 'f')).toBe(path.join(tmp, 'b/y.jsonl'));
    expect(roots.resolve('.', 'f')).toBe(path.join(tmp, 'a'));
  });

  it("reads a user's environment module inside the roots into the spec, and refuses one outside or too large", () => {
    const roots = new DataRoots([path.join(tmp, 'a')]);
    fs.writeFileSync(path.join(tmp, 'a', 'env.js'), 'function reset() { return []; }\nfunction step() { return { observations: [], done: true }; }\n');
    fs.writeFileSync(path.join(tmp, 'outside', 'env.js'), 'function reset() {}');
    fs.writeFileSync(path.join(tmp, 'a', 'huge.js'), Buffer.alloc((1 << 20) + 1, 32));
    const spec = (name: string) => runSpecFromYaml(`stages: [{ grpo: { environment: { name: ${name} } } }]`);
    const confined = confineSpec(spec('env.js'), roots);
    const env = confined.stages[0].kind?.$case === 'grpo' ? confined.stages[0].kind.value.environment : undefined;
    expect(env?.name).toBe(path.join(tmp, 'a', 'env.js'));
    expect(env?.source).toBe(fs.readFileSync(path.join(tmp, 'a', 'env.js'), 'utf8'));
    expect(reason(() => confineSpec(spec('../outside/env.js'), roots))).toBe(`stages[0].grpo.environment.name: "../outside/env.js" is outside the data roots (${path.join(tmp, 'a')})`);
    expect(reason(() => confineSpec(spec('huge.js'), roots))).toBe(`stages[0].grpo.environment.name: "huge.js" is ${(1 << 20) + 1} bytes; an environment module may have ${1 << 20}`);
    // A built-in environment names no file.
    expect(reason(() => confineSpec(spec('countdown'), roots))).toBe('accepted');
  });

  it('refuses what is outside, missing, or has a NUL byte, naming the field', () => {
    const roots = new DataRoots([path.join(tmp, 'a')]);
    expect(reason(() => roots.resolve('../outside/z.jsonl', 'stages[0].grpo.task.uri'))).toMatch(/^stages\[0\]\.grpo\.task\.uri: "\.\.\/outside\/z\.jsonl" is outside the data roots/);
    expect(reason(() => roots.resolve(path.join(tmp, 'outside/z.jsonl'), 'f'))).toMatch(/is outside the data roots/);
    expect(reason(() => roots.resolve('to-b.jsonl', 'f'))).toMatch(/is outside the data roots/);
    expect(reason(() => roots.resolve('sub/none.jsonl', 'f'))).toMatch(/does not exist/);
    expect(reason(() => roots.resolve('sub/x.jsonl\0', 'f'))).toMatch(/contains a NUL byte/);
    // Nothing is learnt about what exists outside: the same answer whether it exists or not.
    expect(reason(() => roots.resolve('../outside/none.jsonl', 'f'))).toMatch(/is outside the data roots/);
  });

  it('reads no file at all without roots, and refuses a root that does not exist', () => {
    expect(reason(() => new DataRoots([]).resolve('x.jsonl', 'f'))).toMatch(/this learner reads none \(no data roots: set TEMPER_DATA_ROOTS\)/);
    expect(DataRoots.fromEnv({ TEMPER_DATA_ROOTS: `${tmp}/a::${tmp}/b` }).roots).toEqual([path.join(tmp, 'a'), path.join(tmp, 'b')]);
    expect(() => DataRoots.fromEnv({ TEMPER_DATA_ROOTS: `${tmp}/nope` })).toThrow(/TEMPER_DATA_ROOTS: .*nope: no such directory/);
  });

  it('confines every path of a spec, built-in sources and store checkpoints untouched', () => {
    const roots = new DataRoots([path.join(tmp, 'a')]);
    const spec = runSpecFromYaml(`
model: { checkpoint: base-model, tokenizer: bytes }
stages:
  - sft: { data: { sources: [{ uri: "builtin:arithmetic" }, { uri: sub/x.jsonl }] } }
  - grpo: { task: { dataset: { path: sub } } }
eval: { task: { uri: "builtin:countdown" } }
`);
    const confined = confineSpec(spec, roots);
    expect(confined.model).toEqual(spec.model);
    const sft = confined.stages[0].kind?.$case === 'sft' ? confined.stages[0].kind.value : undefined;
    expect(sft?.data?.sources.map((s) => s.uri)).toEqual(['builtin:arithmetic', path.join(tmp, 'a/sub/x.jsonl')]);
    const grpo = confined.stages[1].kind?.$case === 'grpo' ? confined.stages[1].kind.value : undefined;
    expect(grpo?.task?.dataset?.path).toBe(path.join(tmp, 'a/sub'));
    expect(confined.eval).toEqual(spec.eval);
    // Every problem at once.
    const bad = runSpecFromYaml(`
model: { tokenizer: ../outside }
stages: [{ grpo: { task: { uri: /etc/hostname } } }]
`);
    expect(reason(() => confineSpec(bad, roots)).split('\n').map((l) => l.split(':')[0])).toEqual(['model.tokenizer', 'stages[0].grpo.task.uri']);
  });

  it('confines a model directory and every file in it, links followed', () => {
    const roots = new DataRoots([path.join(tmp, 'a')]);
    const model = path.join(tmp, 'a', 'model');
    fs.mkdirSync(path.join(model, 'sub'), { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'sub/extra.json']) fs.writeFileSync(path.join(model, f), '{}');
    const spec = (p: string) => runSpecFromYaml(`model: { path: ${p} }\nstages: [{ eval: {} }]`);
    expect(confineSpec(spec('model'), roots).model?.path).toBe(model);
    expect(reason(() => confineSpec(spec('../outside'), roots))).toMatch(/^model\.path: "\.\.\/outside" is outside the data roots/);
    expect(reason(() => confineSpec(spec('sub/x.jsonl'), roots))).toMatch(/^model\.path: "sub\/x\.jsonl" is not a directory/);
    // A weights file that is a link out of the roots would be stored and served: refused.
    fs.symlinkSync(path.join(tmp, 'outside', 'z.jsonl'), path.join(model, 'sub', 'leak.safetensors'));
    expect(reason(() => confineSpec(spec('model'), roots))).toMatch(/^model\.path \(its file sub\/leak\.safetensors\): .* is outside the data roots/);
  });
});
