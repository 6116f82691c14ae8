// Scoring across worker threads. Items are cut into chunks and handed to idle threads,
// so one slow item holds up only its own thread. A watchdog reads each thread's progress
// from shared memory; an item past its time limit gets a result flagged "timeout", its
// thread is terminated and replaced, and the rest of its chunk is scored again elsewhere
// (scoring is deterministic, so redoing finished items changes nothing). Each thread's heap
// is limited too: an item whose scoring runs it out of memory (a plugin that allocates
// without bound) ends its thread the same way, with a result flagged "out_of_memory".
//
// A small request whose spec can only take bounded time per item (built-in components, no
// free text among the options set: no user regular expression) is scored on the calling
// thread instead: a group of short completions costs far less than the hop to a thread and
// back, and nothing in it can hang.
import {
  builtinComponents,
  compileRewardSpec,
  CompiledRewardSpec,
  createRegistry,
  loadRewardPlugins,
  RewardRegistry,
  RewardResult,
  RewardSpecInput,
  ScoreInput,
} from '@temper/rewards';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ChunkReply, ChunkRequest, ThreadData } from './thread-protocol';

export interface PoolOptions {
  threads: number;
  itemTimeoutMs: number;
  /** Heap limit of each thread in MiB (V8's old generation; default 256). */
  threadMemoryMb?: number;
  plugins?: string[];
  maxCompletionChars?: number;
  /** Most items per chunk (default 64). */
  chunkSize?: number;
  /** Requests of bounded specs up to this many characters of completions are scored on the calling thread (default 65536; 0: never). */
  inlineMaxChars?: number;
  /** Told when a thread is replaced (timeout or crash). */
  onReplace?: (reason: string) => void;
}

interface Request {
  results: (RewardResult | undefined)[];
  pending: number;
  names: string[];
  done: boolean;
  resolve(results: RewardResult[]): void;
  reject(err: Error): void;
}

interface Chunk {
  request: Request;
  specKey: string;
  spec: RewardSpecInput | null;
  items: ScoreInput[];
  /** Where each item's result goes in the request. */
  positions: number[];
}

interface Slot {
  worker: Worker;
  current: Int32Array;
  startedAt: Float64Array;
  chunk?: Chunk;
  chunkId: number;
}

export interface PoolStats {
  scored: number;
  /** Of those, scored on the calling thread. */
  scoredInline: number;
  timeouts: number;
  /** Items whose scoring ran their thread out of memory. */
  outOfMemory: number;
  replaced: number;
}

export class ScoringPool {
  readonly registry: RewardRegistry;
  readonly stats: PoolStats = { scored: 0, scoredInline: 0, timeouts: 0, outOfMemory: 0, replaced: 0 };
  private readonly slots: Slot[] = [];
  private readonly queue: Chunk[] = [];
  private readonly specs = new Map<string, { compiled: CompiledRewardSpec; bounded: boolean }>();
  private readonly watchdog: NodeJS.Timeout;
  private nextChunkId = 1;
  private closed = false;

  constructor(private readonly opts: PoolOptions) {
    // The same components as the threads, so a spec is checked here before any work.
    this.registry = createRegistry();
    loadRewardPlugins(opts.plugins ?? [], this.registry);
    for (let i = 0; i < Math.max(1, opts.threads); i++) this.slots.push(this.startThread());
    this.watchdog = setInterval(() => this.checkTimeouts(), Math.max(5, Math.floor(opts.itemTimeoutMs / 4)));
    this.watchdog.unref();
  }

  get threads(): number {
    return this.slots.length;
  }

  /** Checks a spec (RewardSpecError names the bad field) and keeps it compiled. */
  compile(spec: RewardSpecInput | null | undefined): { key: string; compiled: CompiledRewardSpec; bounded: boolean } {
    const key = JSON.stringify(spec ?? null);
    let entry = this.specs.get(key);
    if (!entry) {
      const compiled = compileRewardSpec(spec, { registry: this.registry, maxCompletionChars: this.opts.maxCompletionChars });
      entry = { compiled, bounded: boundedSpec(spec, this.registry) };
      if (this.specs.size >= 64) this.specs.clear();
      this.specs.set(key, entry);
    }
    return { key, ...entry };
  }

  /** One result per item, in item order. */
  score(spec: RewardSpecInput | null | undefined, items: ScoreInput[]): Promise<RewardResult[]> {
    if (this.closed) return Promise.reject(new Error('the scoring pool is closed'));
    let key: string;
    let compiled: CompiledRewardSpec;
    let bounded: boolean;
    try {
      ({ key, compiled, bounded } = this.compile(spec));
    } catch (err) {
      return Promise.reject(err);
    }
    if (items.length === 0) return Promise.resolve([]);
    if (bounded && items.reduce((n, it) => n + it.completion.length, 0) <= (this.opts.inlineMaxChars ?? 65536)) {
      const results = items.map((item) => compiled.score(item));
      this.stats.scored += results.length;
      this.stats.scoredInline += results.length;
      return Promise.resolve(results);
    }
    return new Promise((resolve, reject) => {
      const request: Request = { results: new Array(items.length), pending: items.length, names: compiled.names(), done: false, resolve, reject };
      // Even chunks across threads for small batches (latency), capped for big ones (balance).
      const size = Math.max(1, Math.min(this.opts.chunkSize ?? 64, Math.ceil(items.length / this.slots.length)));
      for (let from = 0; from < items.length; from += size) {
        const positions = Array.from({ length: Math.min(size, items.length - from) }, (_, i) => from + i);
        this.queue.push({ request, specKey: key, spec: spec ?? null, items: positions.map((p) => items[p]), positions });
      }
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    for (const c of this.queue.splice(0)) this.fail(c.request, new Error('the scoring pool closed'));
    await Promise.all(
      this.slots.map((s) => {
        if (s.chunk) this.fail(s.chunk.request, new Error('the scoring pool closed'));
        s.worker.removeAllListeners();
        return s.worker.terminate();
      }),
    );
  }

  private startThread(): Slot {
    const progress = new SharedArrayBuffer(16);
    const data: ThreadData = { plugins: this.opts.plugins ?? [], maxCompletionChars: this.opts.maxCompletionChars ?? 0, progress };
    if (!data.maxCompletionChars) delete (data as Partial<ThreadData>).maxCompletionChars;
    const worker = new Worker(threadFile(), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: this.opts.threadMemoryMb ?? 256 } });
    const slot: Slot = { worker, current: new Int32Array(progress, 0, 1), startedAt: new Float64Array(progress, 8, 1), chunkId: 0 };
    worker.on('message', (reply: ChunkReply) => this.onReply(slot, reply));
    worker.on('error', (err) => this.onCrash(slot, err));
    worker.on('exit', (code) => this.onCrash(slot, new Error(`scoring thread exited with code ${code}`)));
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.chunk) continue;
      const chunk = this.queue.shift()!;
      if (chunk.request.done) continue;
      slot.chunk = chunk;
      slot.chunkId = this.nextChunkId++;
      const req: ChunkRequest = { id: slot.chunkId, specKey: chunk.specKey, spec: chunk.spec, items: chunk.items };
      slot.worker.postMessage(req);
    }
  }

  private onReply(slot: Slot, reply: ChunkReply): void {
    const chunk = slot.chunk;
    if (!chunk || reply.id !== slot.chunkId) return;
    slot.chunk = undefined;
    if ('error' in reply) this.fail(chunk.request, new Error(reply.error));
    else reply.results.forEach((r, i) => this.deliver(chunk.request, chunk.positions[i], r));
    this.dispatch();
  }

  private deliver(request: Request, position: number, result: RewardResult): void {
    if (request.done || request.results[position]) return;
    request.results[position] = result;
    this.stats.scored++;
    if (--request.pending === 0) {
      request.done = true;
      request.resolve(request.results as RewardResult[]);
    }
  }

  private fail(request: Request, err: Error): void {
    if (request.done) return;
    request.done = true;
    request.reject(err);
  }

  private checkTimeouts(): void {
    const now = Date.now();
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i];
      const index = Atomics.load(slot.current, 0) - 1;
      if (!slot.chunk || index < 0 || now - slot.startedAt[0] <= this.opts.itemTimeoutMs) continue;
      this.stats.timeouts++;
      this.giveUpOn(slot, index, 'timeout');
      this.replace(i, `item timed out after ${this.opts.itemTimeoutMs} ms`);
    }
    this.dispatch();
  }

  /** The item at `index` of the slot's chunk gets a result flagged `flag`; the rest of the chunk is scored again. */
  private giveUpOn(slot: Slot, index: number, flag: string): void {
    const chunk = slot.chunk!;
    this.deliver(chunk.request, chunk.positions[index], flagged(chunk.request.names, flag));
    const rest = chunk.positions.map((p, j) => ({ p, item: chunk.items[j] })).filter((_, j) => j !== index);
    if (rest.length > 0) {
      this.queue.unshift({ ...chunk, items: rest.map((r) => r.item), positions: rest.map((r) => r.p) });
    }
  }

  private onCrash(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0 || this.closed) return;
    // Which item ran the heap out is in shared memory, readable after the thread is gone.
    const index = Atomics.load(slot.current, 0) - 1;
    if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' && slot.chunk && index >= 0) {
      this.stats.outOfMemory++;
      this.giveUpOn(slot, index, 'out_of_memory');
      this.replace(i, `item ran its thread out of memory (limit ${this.opts.threadMemoryMb ?? 256} MiB)`);
    } else {
      if (slot.chunk) this.fail(slot.chunk.request, new Error(`scoring thread failed: ${err.message}`));
      this.replace(i, `thread failed: ${err.message}`);
    }
    this.dispatch();
  }

  private replace(i: number, reason: string): void {
    const old = this.slots[i];
    old.worker.removeAllListeners();
    old.worker.on('error', () => {}); // it is going away; nothing it says matters now
    void old.worker.terminate();
    this.slots[i] = this.startThread();
    this.stats.replaced++;
    this.opts.onReplace?.(reason);
  }
}

/**
 * Whether every item of a spec takes bounded time: only built-in components, and of the
 * options set, no free text (a pattern, a regex, a tag name: what could make a regular
 * expression backtrack without end). Options limited to a few values are fine.
 */
export function boundedSpec(spec: RewardSpecInput | null | undefined, registry: RewardRegistry): boolean {
  for (const entry of spec?.components ?? []) {
    const component = registry.get(entry.name);
    if (!component || !builtinComponents.includes(component)) return false;
    for (const name of Object.keys(entry.options ?? {})) {
      const option = component.options[name];
      if (!option || (option.type === 'string' && !option.oneOf)) return false;
    }
  }
  return true;
}

/** A result of 0 for an item the pool gave up on, saying why ("timeout", "out_of_memory"). */
function flagged(names: string[], flag: string): RewardResult {
  return { total: 0, components: Object.fromEntries(names.map((n) => [n, 0])), truncated: false, flags: [flag], extractedAnswer: '' };
}

// The compiled thread beside this file; under ts-jest this file runs from src/, so the
// built one in dist/ (npm test and `tsc -b` build it).
function threadFile(): string {
  const here = path.join(__dirname, 'score-thread.js');
  return fs.existsSync(here) ? here : path.join(__dirname, '..', 'dist', 'score-thread.js');
}
