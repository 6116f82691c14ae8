// Users' environment code in the sandbox: a real environment plays, state stays with its
// conversation, and every way out fails (files, network, processes, the host's globals,
// unbounded memory, endless loops, runaway recursion) while the host goes on.
import { EnvironmentSandbox, parseTurn } from '@temper/environments';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const limits = { memoryBytes: 16 * 1024 * 1024, timeoutMs: 500 };
const task = { prompt: 'count to three', reference: '3', seed: 1 };

const counter = `
let count = 0;
function reset(task) { return [{ role: 'user', content: task.prompt + ' (' + task.seed + ')' }]; }
function step(turn) {
  count++;
  return { observations: [{ role: 'user', content: 'count ' + count + ': ' + turn.text }], rewards: { steps: 1 }, done: count >= Number(3) };
}
function tools() { return [{ type: 'function', function: { name: 'noop', description: 'does nothing', parameters: { type: 'object', properties: {} } } }]; }
`;

describe('environment sandbox (QuickJS in WebAssembly, on its own thread)', () => {
  const sandbox = new EnvironmentSandbox();
  afterAll(() => sandbox.close());

  it("runs a user's environment, one interpreter per conversation", async () => {
    const a = sandbox.environment(counter, limits);
    const b = sandbox.environment(counter, limits);
    expect(await a.reset(task)).toEqual([{ role: 'user', content: 'count to three (1)' }]);
    expect(a.tools().map((t) => t.function.name)).toEqual(['noop']);
    await b.reset(task);
    const turn = parseTurn('one', 'compact', []);
    expect(await a.step(turn)).toEqual({ observations: [{ role: 'user', content: 'count 1: one' }], rewards: { steps: 1 }, done: false });
    await a.step(turn);
    expect((await a.step(turn)).done).toBe(true);
    // b's count is its own.
    expect((await b.step(turn)).observations[0].content).toBe('count 1: one');
    a.close?.();
    b.close?.();
  });

  const secret = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'temper-sandbox-')), 'secret.txt');
  fs.writeFileSync(secret, 'do not read');
  const attempts: [string, string, RegExp, typeof limits?][] = [
    ['files through require', `require('fs').readFileSync(${JSON.stringify(secret)}, 'utf8')`, /ReferenceError: 'require' is not defined/],
    ['files through process', `process.binding('fs')`, /ReferenceError: 'process' is not defined/],
    ['the network', `fetch('http://127.0.0.1:1/')`, /ReferenceError: 'fetch' is not defined/],
    ['sockets', `new WebSocket('ws://127.0.0.1:1/')`, /ReferenceError: 'WebSocket' is not defined/],
    ['processes', `require('child_process').execSync('id')`, /ReferenceError: 'require' is not defined/],
    ['the host through a constructor', `(function () {}).constructor('return process')().exit(1)`, /ReferenceError: 'process' is not defined/],
    ['the host through globalThis', `globalThis.process.exit(1)`, /TypeError: cannot read property 'exit' of undefined/],
    // A small heap and a long deadline, so that the heap runs out first even on a busy machine.
    ['unbounded memory', `const keep = []; for (let i = 0; ; i++) keep[i] = i`, /out of memory/, { memoryBytes: 4 << 20, timeoutMs: 20000 }],
    ['unbounded memory in objects', `const keep = []; for (let i = 0; ; i++) keep.push({ i, s: 'item ' + i })`, /out of memory/, { memoryBytes: 4 << 20, timeoutMs: 20000 }],
    ['catastrophic backtracking', `/(a+)+$/.test('a'.repeat(40) + 'b')`, /ran past its 500 ms/],
    ['an endless loop', `for (;;) {}`, /ran past its 500 ms/],
    ['runaway recursion', `(function f() { return f() + 1; })()`, /stack overflow|RangeError|InternalError/],
  ];

  it.each(attempts)('refuses %s, and the host goes on', async (_what, code, error, own = limits) => {
    const env = sandbox.environment(`function reset(t) { return [{ role: 'user', content: 'x' }]; }\nfunction step(turn) { ${code}; return { observations: [], done: true, rewards: { leaked: 1 } }; }`, own);
    await env.reset(task);
    await expect(env.step(parseTurn('go', 'compact', []))).rejects.toThrow(error);
    env.close?.();
    // The sandbox still serves others.
    const next = sandbox.environment(counter, limits);
    expect(await next.reset(task)).toHaveLength(1);
    next.close?.();
  });

  it('refuses a module without reset and step, and one that does not load', async () => {
    await expect(sandbox.environment('function step() {}', limits).reset(task)).rejects.toThrow('the environment module defines no reset function');
    await expect(sandbox.environment('function reset( {', limits).reset(task)).rejects.toThrow(/loading the environment failed: SyntaxError/);
    await expect(sandbox.environment('for (;;) {}', limits).reset(task)).rejects.toThrow('loading the environment ran past its 500 ms');
    // There is no module to import.
    await expect(sandbox.environment("import * as fs from 'node:fs';\nfunction reset() {}\nfunction step() {}", limits).reset(task)).rejects.toThrow("could not load module 'node:fs'");
  });
});
