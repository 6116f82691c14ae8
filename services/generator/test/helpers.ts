// Shared setup for the generator's tests: a private nats-server (the rollout request queue is
// a work queue, which allows one consumer per subject, so the generator's shared "generators"
// consumer must not meet other suites' consumers on the harness server), a real checkpoint
// store over loopback gRPC that announces commits on that server, and tiny byte-tokenizer
// models pushed into it as policy versions.
import { AckPolicy } from '@nats-io/jetstream';
import { trace } from '@opentelemetry/api';
import { Bus, connectBus, NatsServer, startNatsServer, streams, subjects } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-client';
import { CheckpointStore, checkpointStoreBinding, FsBackend, publishCommitted, widenFlowControl } from '@temper/checkpoint-store';
import { HfConfig, Model } from '@temper/native';
import { CheckpointManifest, RolloutGroup } from '@temper/proto';
import { createLogger, Logger, RunningGrpcServer, startGrpcServer } from '@temper/service';
import { ByteTokenizer, TOKENIZER_SPEC_FILE } from '@temper/tokenizers';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PolicyManager } from '../src/policy';

export const tokenizer = new ByteTokenizer();

export const tinyConfig: HfConfig = {
  model_type: 'llama',
  vocab_size: tokenizer.vocabSize,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
};

export const tracer = trace.getTracer('generator-test');

export interface LogEntry {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A logger that keeps what it is told (and prints it when TEMPER_TEST_LOGS is set). */
export function recordingLogger(): { log: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const printer = process.env.TEMPER_TEST_LOGS ? createLogger('generator-test') : undefined;
  const make = (bound: Record<string, unknown>): Logger => {
    const at = (level: 'info' | 'warn' | 'error' | 'debug') => (msg: string, fields?: Record<string, unknown>) => {
      entries.push({ ...bound, ...fields, level, msg });
      printer?.[level](msg, { ...bound, ...fields });
    };
    return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: (f) => make({ ...bound, ...f }) };
  };
  return { log: make({}), entries };
}

/** Logs only when TEMPER_TEST_LOGS is set, so test output stays readable. */
export function testLogger(): Logger {
  if (process.env.TEMPER_TEST_LOGS) return createLogger('generator-test');
  const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => quiet };
  return quiet;
}

export interface Stack {
  nats: NatsServer;
  bus: Bus;
  store: CheckpointStore;
  storeServer: RunningGrpcServer;
  client: CheckpointClient;
  root: string;
  /** Another connection to the same server (a second generator has its own). */
  connect(name: string): Promise<Bus>;
  /** A PolicyManager on its own connection, closed by stop(). */
  policyManager(bus?: Bus): PolicyManager;
  stop(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'temper-generator-test-'));
  const nats = await startNatsServer();
  const buses: Bus[] = [];
  const managers: PolicyManager[] = [];
  const connect = async (name: string) => {
    const b = await connectBus(nats.url, name);
    buses.push(b);
    return b;
  };
  const bus = await connect('generator-test');
  const store = await CheckpointStore.open({
    backend: await FsBackend.open(path.join(root, 'store')),
    stagingDir: path.join(root, 'store', 'uploads'),
    onCommitted: publishCommitted(bus),
  });
  const storeServer = await startGrpcServer({ address: '127.0.0.1:0', services: [checkpointStoreBinding(store)] });
  widenFlowControl(storeServer.server);
  const client = new CheckpointClient(storeServer.address);
  return {
    nats,
    bus,
    store,
    storeServer,
    client,
    root,
    connect,
    policyManager: (b = bus) => {
      const m = new PolicyManager({ bus: b, store: client, log: testLogger(), threads: 1, workDir: root });
      managers.push(m);
      return m;
    },
    stop: async () => {
      for (const m of managers) await m.close();
      client.close();
      await storeServer.stop(1000);
      await store.close();
      for (const b of buses) await b.close().catch(() => undefined);
      await nats.stop();
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
}

/** A fresh tiny model saved as a checkpoint directory with the byte tokenizer's spec. */
export async function saveTinyModel(dir: string, seed: number): Promise<Model> {
  const model = await Model.create(tinyConfig, { seed, threads: 1 });
  await model.save(dir);
  await fsp.writeFile(path.join(dir, TOKENIZER_SPEC_FILE), JSON.stringify({ kind: 'byte' }));
  return model;
}

/** Saves a tiny model and pushes it as policy `version` of `runId` (0: no policy version). */
export async function pushTinyPolicy(stack: Stack, opts: { runId: string; version: number; seed: number }): Promise<{ manifest: CheckpointManifest; model: Model; dir: string }> {
  const dir = path.join(stack.root, `model-${opts.runId}-${opts.version}-${opts.seed}`);
  const model = await saveTinyModel(dir, opts.seed);
  const { manifest } = await stack.client.pushDir(dir, { runId: opts.runId, stage: 'grpo', step: opts.version, branch: 'main' }, { policyVersion: opts.version });
  return { manifest, model, dir };
}

/**
 * log p(completion token | prefix) for every completion token, computed by a full forward
 * pass over prompt + completion (what the learner will compare against).
 */
export async function teacherForcedLogprobs(model: Model, prompt: ArrayLike<number>, completion: ArrayLike<number>): Promise<Float32Array> {
  const tokens = Int32Array.from([...Array.from(prompt), ...Array.from(completion)]);
  const { logprobs } = await model.logprobs(tokens, { batch: 1, seqLen: tokens.length });
  return logprobs.subarray(prompt.length - 1, prompt.length - 1 + completion.length);
}

export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface Received {
  group: RolloutGroup;
  msgId: string;
  traceparent?: string;
}


/** Reads a run's rollout groups off TEMPER_ROLLOUTS, as a scorer would. */
export async function rolloutReader(bus: Bus, runId: string) {
  const name = `test_reader_${runId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  await bus.jsm.consumers.add(streams.rollouts.name, { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: subjects.rollout(runId) });
  const consumer = await bus.js.consumers.get(streams.rollouts.name, name);
  const next = async (timeoutMs: number): Promise<Received | undefined> => {
    const m = await consumer.next({ expires: Math.max(1000, timeoutMs) });
    if (!m) return undefined;
    m.ack();
    return { group: RolloutGroup.decode(m.data), msgId: m.headers?.get('Nats-Msg-Id') ?? '', traceparent: m.headers?.get('traceparent') || undefined };
  };
  return {
    next,
    /** Exactly `count` groups within the time limit. */
    take: async (count: number, timeoutMs = 20000): Promise<Received[]> => {
      const out: Received[] = [];
      const deadline = Date.now() + timeoutMs;
      while (out.length < count) {
        if (Date.now() > deadline) throw new Error(`got ${out.length} of ${count} rollout groups`);
        const r = await next(2000);
        if (r) out.push(r);
      }
      return out;
    },
  };
}
