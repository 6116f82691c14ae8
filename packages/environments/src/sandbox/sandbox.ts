// Users' environments, sandboxed: their code runs in QuickJS (see quickjs-host.ts) on a
// thread of its own with a V8 heap cap, so a script can neither reach the host nor stall the
// generator. Each call has the script's own deadline inside the interpreter; should the thread
// fail to answer a little after it (it never should), the thread is ended, the calls waiting
// on it fail, and the next conversation starts a fresh one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ChatMessage } from '@temper/tokenizers';
import type { SandboxReply, SandboxRequest } from './protocol';
import type { SandboxLimits } from './quickjs-host';
import type { AssistantTurn, Environment, EnvironmentTask, StepResult, ToolSchema } from '../types';

export const DEFAULT_SANDBOX_MEMORY_MB = 64;
const GRACE_MS = 2000;

interface Waiting {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

type Request = SandboxRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class EnvironmentSandbox {
  private worker?: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private nextConversation = 1;

  /** An environment running `source` within `limits`: one conversation's. */
  environment(source: string, limits: SandboxLimits): Environment {
    return new SandboxedEnvironment(this, this.nextConversation++, source, limits);
  }

  /** Ends the thread (and every sandboxed conversation on it). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the environment sandbox was closed'));
    await w?.terminate();
  }

  request(req: Request, timeoutMs: number): Promise<unknown> {
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // The interpreter checks its deadline between instructions; a single long built-in call
        // (filling a huge array) can outlast it. Then the thread is replaced.
        void this.restart(new Error(`the sandbox thread did not answer within ${timeoutMs + GRACE_MS} ms and was replaced`));
      }, timeoutMs + GRACE_MS);
      this.waiting.set(id, { resolve, reject, timer });
      worker.postMessage({ ...req, id } as SandboxRequest);
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(threadFile(), { resourceLimits: { maxOldGenerationSizeMb: 512, stackSizeMb: 4 } });
    w.unref();
    w.on('message', (reply: SandboxReply) => {
      const waiting = this.waiting.get(reply.id);
      if (!waiting) return;
      this.waiting.delete(reply.id);
      clearTimeout(waiting.timer);
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.value);
    });
    w.on('error', (err) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`the sandbox thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }

  private lost(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    this.failAll(err);
  }

  private async restart(err: Error): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(err);
    await w?.terminate();
  }

  private failAll(err: Error): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(err);
      this.waiting.delete(id);
    }
  }
}

class SandboxedEnvironment implements Environment {
  private toolList: ToolSchema[] = [];
  private opened = false;

  constructor(
    private readonly sandbox: EnvironmentSandbox,
    private readonly conversation: number,
    private readonly source: string,
    private readonly limits: SandboxLimits,
  ) {}

  async reset(task: EnvironmentTask): Promise<ChatMessage[]> {
    const t = this.limits.timeoutMs;
    await this.sandbox.request({ op: 'open', conversation: this.conversation, source: this.source, limits: this.limits }, t);
    this.opened = true;
    const messages = (await this.sandbox.request({ op: 'call', conversation: this.conversation, fn: 'reset', arg: task }, t)) as ChatMessage[];
    const tools = await this.sandbox.request({ op: 'call', conversation: this.conversation, fn: 'tools', arg: null }, t);
    if (!Array.isArray(tools)) throw new Error('tools() must return a list of tool schemas');
    this.toolList = tools as ToolSchema[];
    return messages;
  }

  async step(turn: AssistantTurn): Promise<StepResult> {
    return (await this.sandbox.request({ op: 'call', conversation: this.conversation, fn: 'step', arg: turn }, this.limits.timeoutMs)) as StepResult;
  }

  tools(): ToolSchema[] {
    return this.toolList;
  }

  close(): void {
    if (this.opened) this.sandbox.request({ op: 'close', conversation: this.conversation }, this.limits.timeoutMs).catch(() => undefined);
  }
}

// Jest runs the sources; a thread needs JavaScript, so it takes the built one in dist/.
function threadFile(): string {
  const here = path.join(__dirname, 'sandbox-thread.js');
  return fs.existsSync(here) ? here : path.join(__dirname, '..', '..', 'dist', 'sandbox', 'sandbox-thread.js');
}
