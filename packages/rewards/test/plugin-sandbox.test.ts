// Reward plugins run sandboxed: a plugin's code, at load and while scoring, cannot read
// files, open sockets, start processes, reach Node's globals, or climb out through the
// objects it is given; what it returns still scores as before (NaN flagged, options applied).
import { compileRewardSpec, createRegistry, loadRewardPlugins } from '@temper/rewards';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-plugin-sandbox-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function plugin(name: string, source: string): string {
  const file = path.join(dir, `${name}.js`);
  fs.writeFileSync(file, source);
  return file;
}

// Each attempt returns something only when the door is open; the plugin reports which were.
const attempts = `{
  require: () => require('node:fs').readFileSync('/etc/hostname', 'utf8'),
  process: () => process.pid,
  globalProcess: () => globalThis.process.pid,
  moduleRequire: () => module.require('node:child_process'),
  constructorOfInput: (input) => input.constructor.constructor('return process')().pid,
  constructorOfContext: (input, prepared, ctx) => ctx.tokens.constructor('return process')().pid,
  constructorOfPrepared: (input, prepared) => prepared.constructor.constructor('return process')().pid,
  callerOfScore: () => (function f() { return f.caller && f.caller.caller && f.caller.caller.constructor('return process')().pid; })(),
  eval: () => eval('globalThis.process').pid,
  newFunction: () => new Function('return process')().pid,
  wasm: () => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])),
  buffer: () => Buffer.from('x'),
  timers: () => setTimeout(() => {}, 1),
  fetch: () => fetch('http://127.0.0.1:1/'),
  canary: () => globalThis.__temperSandboxCanary,
}`;

describe('reward plugin sandbox', () => {
  it('no files, sockets, processes or Node globals while scoring, nor through the objects it is given', () => {
    (globalThis as Record<string, unknown>).__temperSandboxCanary = 'host secret';
    const file = plugin(
      'escape',
      `const attempts = ${attempts};
      module.exports.components = [{
        name: 'escape', description: 'Counts the ways out.', options: {},
        score: (input, prepared, ctx) => {
          const open = Object.entries(attempts).filter(([, f]) => { try { return f(input, prepared, ctx) !== undefined; } catch { return false; } }).map(([k]) => 'open_' + k);
          return { value: open.length, flags: open };
        },
      }];`,
    );
    const registry = createRegistry();
    expect(loadRewardPlugins([file], registry)).toEqual(['escape']);
    const spec = compileRewardSpec({ components: [{ name: 'escape', weight: 1 }] }, { registry });
    const r = spec.score({ completion: 'x', reference: '1' });
    expect(r.flags).toEqual([]);
    expect(r.components.escape).toBe(0);
  });

  it('the same at load time: a plugin that requires a module or touches process does not load, and says why', () => {
    const reads = plugin('reads', `const fs = require('fs'); module.exports.components = [{ name: 'r', description: '', options: {}, score: () => fs.readFileSync('/etc/hostname').length }];`);
    expect(() => loadRewardPlugins([reads], createRegistry())).toThrow(/failed to load in its sandbox \(plugins get JavaScript's built-ins only: no require, process, files, sockets or timers\): ReferenceError: require is not defined/);
    const spawns = plugin('spawns', `process.binding('spawn_sync'); module.exports.components = [];`);
    expect(() => loadRewardPlugins([spawns], createRegistry())).toThrow(/process is not defined/);
    const spins = plugin('spins', `for (;;); module.exports.components = [];`);
    expect(() => loadRewardPlugins([spins], createRegistry())).toThrow(/timed out/);
  });

  it('what a plugin returns scores as before: its options, the shared context, NaN flagged', () => {
    const file = plugin(
      'works',
      `module.exports.components = [
        { name: 'unit', description: 'mentions the unit', options: { unit: { type: 'string', default: 'cm', description: 'unit' } },
          prepare: (o) => ({ re: new RegExp(o.unit + '\\\\b') }), score: (input, p) => (p.re.test(input.completion) ? 1 : 0) },
        { name: 'tokens', description: 'length from the context', options: {}, score: (input, p, ctx) => ctx.tokens() + (ctx.verdict().correct ? 1000 : 0) },
        { name: 'nan', description: 'not a number', options: {}, score: () => NaN },
      ];`,
    );
    const registry = createRegistry();
    loadRewardPlugins([file], registry);
    const spec = compileRewardSpec({ components: [{ name: 'unit', weight: 1, options: { unit: 'kg' } }, { name: 'tokens', weight: 0 }, { name: 'nan', weight: 1 }] }, { registry });
    const r = spec.score({ completion: '<answer>5</answer> 5 kg', reference: '5', completionTokens: 7 });
    expect(r.components.unit).toBe(1);
    expect(r.components.tokens).toBe(1007);
    expect(r.flags).toContain('nan_not_finite');
  });
});
