// Reward plugins run in a sandbox: each plugin file is evaluated in its own V8 context that
// has JavaScript's built-ins and nothing of Node's (no require, process, Buffer, timers, or
// dynamic import), with code generation from strings turned off, so a plugin cannot read
// files, open sockets or start processes. Nothing of this realm is handed to plugin code:
// its inputs are rebuilt inside the sandbox from JSON, its results leave it as JSON, and the
// scoring context's methods reach this side through closures plugin code cannot see. (A
// host object inside the sandbox would lead back to this realm's Function constructor.)
// Time is bounded by the scoring threads' per-item limit (the pool replaces a stuck thread);
// memory by the threads' heap limit.
import * as fs from 'node:fs';
import * as vm from 'node:vm';
import type { AnyRewardComponent } from './registry';
import type { ComponentOutcome, OptionSpec, OptionValue, ScoreInput, ScoringContext } from './types';

/** How long a plugin file's top-level code may run when it is loaded. */
const LOAD_TIMEOUT_MS = 5000;

// Compiled inside each sandbox: the only functions that cross the boundary. Strict, so their
// callers cannot be read through Function.prototype.caller.
const BRIDGE = `'use strict';
({
  exports(module) {
    const list = module.exports && (module.exports.components || (module.exports.default ? [module.exports.default] : []));
    return JSON.stringify((Array.isArray(list) ? list : []).map((c) => ({
      name: c && c.name, description: c && c.description, options: c && c.options,
      needsReference: !!(c && c.needsReference), hasPrepare: typeof (c && c.prepare) === 'function', hasScore: typeof (c && c.score) === 'function',
    })));
  },
  prepare(module, index, optionsJson, path) {
    const c = (module.exports.components || [module.exports.default])[index];
    const options = JSON.parse(optionsJson);
    return { value: c.prepare ? c.prepare(options, path) : options };
  },
  score(module, index, inputJson, prepared, tokens, verdict) {
    const c = (module.exports.components || [module.exports.default])[index];
    const ctx = Object.freeze({ tokens: () => tokens(), verdict: () => JSON.parse(verdict()) });
    const out = c.score(JSON.parse(inputJson), prepared.value, ctx);
    // Numbers as text, so NaN and the infinities arrive as themselves (JSON has none of them).
    return typeof out === 'number' ? 'n' + String(out) : 'j' + JSON.stringify(out === undefined ? null : out);
  },
})`;

interface Bridge {
  exports(module: object): string;
  prepare(module: object, index: number, optionsJson: string, path: string): object;
  score(module: object, index: number, inputJson: string, prepared: object, tokens: () => number, verdict: () => string): string;
}

interface ExportedComponent {
  name: unknown;
  description: unknown;
  options: unknown;
  needsReference: boolean;
  hasPrepare: boolean;
  hasScore: boolean;
}

/** The components a plugin file exports, each running inside the plugin's sandbox. */
export function loadSandboxedPlugin(file: string): AnyRewardComponent[] {
  const source = fs.readFileSync(file, 'utf8');
  const context = vm.createContext(Object.create(null), { name: `reward plugin ${file}`, codeGeneration: { strings: false, wasm: false } });
  const bridge = new vm.Script(BRIDGE, { filename: 'temper-plugin-bridge.js' }).runInContext(context) as Bridge;
  const module = vm.runInContext('globalThis.module = { exports: {} }', context) as { exports: object };
  // The plugin's top-level code runs inside this script, so the time limit covers it.
  const body = new vm.Script(`(function (module, exports) {\n${source}\n})(module, module.exports);`, { filename: file });
  try {
    body.runInContext(context, { timeout: LOAD_TIMEOUT_MS });
  } catch (err) {
    throw new Error(`reward plugin ${file} failed to load in its sandbox (plugins get JavaScript's built-ins only: no require, process, files, sockets or timers): ${err instanceof Error ? err.message : String(err)}`);
  }
  const listed = JSON.parse(bridge.exports(module)) as ExportedComponent[];
  return listed.map((c, index) => {
    if (typeof c.name !== 'string') throw new Error(`reward plugin ${file}: component ${index} has no name`);
    if (!c.hasScore) throw new Error(`reward component "${c.name}" has no score function`);
    return {
      name: c.name,
      description: typeof c.description === 'string' ? c.description : '',
      options: (c.options && typeof c.options === 'object' ? c.options : {}) as Record<string, OptionSpec>,
      needsReference: c.needsReference,
      prepare: (options: Record<string, OptionValue>, path: string) => bridge.prepare(module, index, JSON.stringify(options), path),
      score: (input: ScoreInput, prepared: object, ctx: ScoringContext): number | ComponentOutcome => {
        const out = bridge.score(module, index, JSON.stringify(input), prepared, () => ctx.tokens(), () => JSON.stringify(ctx.verdict()));
        return (out[0] === 'n' ? Number(out.slice(1)) : JSON.parse(out.slice(1))) as number | ComponentOutcome;
      },
    };
  });
}
