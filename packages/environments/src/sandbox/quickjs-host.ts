// A user's environment inside QuickJS compiled to WebAssembly: an interpreter with nothing of
// the host in it. The script sees the JavaScript language and its standard objects and no
// more: no require, no import, no process, no files, no network, no timers. Each conversation
// gets its own runtime, so state never leaks between conversations, with a memory limit
// (allocation past it fails inside the script with "out of memory"), a stack limit and a
// deadline on every call (the interpreter is interrupted when it passes). Values cross as JSON
// text, so nothing but plain data comes out.
//
// The script defines global functions:
//   reset(task) -> messages            task: { prompt, reference, seed }
//   step(turn) -> { observations, rewards?, done, tools? }
//                                      turn: { text, toolCalls, toolCallErrors, truncated }
//   tools() -> tool schemas            optional
import type { QuickJSContext, QuickJSRuntime, QuickJSWASMModule } from 'quickjs-emscripten-core';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require('quickjs-emscripten-core') as typeof import('quickjs-emscripten-core');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const variantModule = require('@jitl/quickjs-wasmfile-release-sync');

export interface SandboxLimits {
  /** Heap the script may allocate, in bytes. */
  memoryBytes: number;
  /** Longest one call (loading the script, reset, step, tools) may run. */
  timeoutMs: number;
}

/** Most characters a call may return (a runaway observation would otherwise flood the context). */
export const MAX_RESULT_CHARS = 1 << 20;
const STACK_BYTES = 256 * 1024;

let quickjs: Promise<QuickJSWASMModule> | undefined;

/** The WebAssembly module, compiled once per thread. */
export function loadQuickJS(): Promise<QuickJSWASMModule> {
  quickjs ??= core.newQuickJSWASMModuleFromVariant(variantModule.default ?? variantModule);
  return quickjs;
}

export class SandboxError extends Error {}

export class QuickJSEnvironmentHost {
  private readonly runtime: QuickJSRuntime;
  private readonly context: QuickJSContext;

  constructor(
    module: QuickJSWASMModule,
    source: string,
    private readonly limits: SandboxLimits,
  ) {
    this.runtime = module.newRuntime();
    this.runtime.setMemoryLimit(limits.memoryBytes);
    this.runtime.setMaxStackSize(STACK_BYTES);
    this.context = this.runtime.newContext();
    this.run(source, 'loading the environment');
    const missing = ['reset', 'step'].filter((f) => this.run(`typeof ${f}`, 'loading the environment') !== 'function');
    if (missing.length > 0) throw new SandboxError(`the environment module defines no ${missing.join(' and no ')} function`);
  }

  /** Calls a global function of the script with one JSON argument; its JSON result. */
  call(fn: 'reset' | 'step' | 'tools', arg: unknown): unknown {
    if (fn === 'tools' && this.run('typeof tools', fn) !== 'function') return [];
    const argument = this.context.newString(JSON.stringify(arg ?? null));
    this.context.setProp(this.context.global, '__temperArgument', argument);
    argument.dispose();
    const text = this.run(`JSON.stringify(${fn}(JSON.parse(__temperArgument)))`, fn);
    if (typeof text !== 'string') throw new SandboxError(`${fn} returned nothing JSON can carry`);
    if (text.length > MAX_RESULT_CHARS) throw new SandboxError(`${fn} returned more than ${MAX_RESULT_CHARS} characters`);
    return JSON.parse(text);
  }

  dispose(): void {
    this.context.dispose();
    this.runtime.dispose();
  }

  private run(code: string, what: string): unknown {
    this.runtime.setInterruptHandler(core.shouldInterruptAfterDeadline(Date.now() + this.limits.timeoutMs));
    const result = this.context.evalCode(code, 'environment.js');
    if (result.error) {
      const e = this.context.dump(result.error) as { name?: string; message?: string } | string;
      result.error.dispose();
      const message = typeof e === 'object' && e ? `${e.name ?? 'Error'}: ${e.message ?? ''}` : String(e);
      if (/InternalError: interrupted/.test(message)) throw new SandboxError(`${what} ran past its ${this.limits.timeoutMs} ms`);
      throw new SandboxError(`${what} failed: ${message}`);
    }
    const value = this.context.dump(result.value);
    result.value.dispose();
    return value;
  }
}
