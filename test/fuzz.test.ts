// Bad input at every gRPC API: each of the four services as its own process receives
// thousands of seeded cases per service (random bytes, mutated valid requests, wrong wire
// types, invalid UTF-8 and NUL in strings, unknown enum values, negative and enormous
// numbers, path-like names wherever a name becomes a file, key or subject, huge repeated
// fields, deep nesting, oversize messages). Every case must end with a clear status (never
// INTERNAL, UNKNOWN or UNAVAILABLE, never a hang), every service must stay up, and what the
// services held before (a checkpoint, a run) must be intact afterwards.
// TEMPER_FUZZ_CASES sets the cases per service (default 500 in CI; the figures in the README
// are from 2000), TEMPER_FUZZ_SEED the seed.
import * as grpc from '@grpc/grpc-js';
import { CheckpointClient } from '@temper/checkpoint-client';
import {
  CancelRunRequest,
  CreateRunRequest,
  DeleteCheckpointRequest,
  GenerateRequest,
  GetCheckpointRequest,
  GetLineageRequest,
  GetRunRequest,
  GetUploadStatusRequest,
  ListCheckpointsRequest,
  ListRunsRequest,
  LoadPolicyRequest,
  PutCheckpointRequest,
  ScoreRequest,
  StartUploadRequest,
  TagCheckpointRequest,
  WatchRunRequest,
} from '@temper/proto';
import { checkHealth, grpcClientSetup, ServiceName } from '@temper/service';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../apps/cli/src/learner-client';
import { LocalStack, startLocalStack } from '../apps/cli/src/local-stack';
import { expectSameTree, makeModelDir } from './harness/checkpoint-dirs';

const CASES = Number(process.env.TEMPER_FUZZ_CASES) || 500;
const SEED = Number(process.env.TEMPER_FUZZ_SEED) || 20261207;
// Generous: a loaded CI machine is slow, a hang is forever.
const CALL_DEADLINE_MS = 60000;

/** Statuses that answer bad input clearly; anything else counts as a failure. */
const CLEAR = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ALREADY_EXISTS,
  grpc.status.OUT_OF_RANGE,
  grpc.status.ABORTED,
]);

// mulberry32: small, seeded, the same cases on every machine.
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    bytes: (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256)),
  };
}
type Rng = ReturnType<typeof rng>;

const EVIL_NAMES = [
  '../../etc/passwd',
  '/etc/passwd',
  '..',
  '.',
  'a/../../b',
  'model.safetensors/../../../x',
  'a\u0000b',
  '\u0000',
  'C:\\Windows\\system32',
  '%2e%2e%2f%2e%2e%2f',
  'temper.>',
  'run.*.status',
  'with spaces and\nnewlines',
  '\uD800',
  '🙂'.repeat(50),
  'x'.repeat(5000),
  '',
  '-',
  'deadbeef',
  'latest',
] as const;

// What a float field can carry: the extremes of float32, NaN and the infinities.
const evilFloat = (r: Rng) => r.pick([0, 1, -1, 3.4e38, -3.4e38, 1e-45, Number.NaN, Infinity, -Infinity]);

// Wire-level protobuf built from random fields: valid framing with the wrong types, invalid
// UTF-8 in length-delimited fields, huge varints, truncated lengths, deep nesting.
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

function wireMessage(r: Rng, depth = 0): number[] {
  const out: number[] = [];
  const fields = r.int(6);
  for (let i = 0; i < fields; i++) {
    const field = 1 + r.int(depth === 0 ? 12 : 6);
    const kind = r.int(8);
    if (kind === 0) out.push(...varint(BigInt(field << 3)), ...varint(r.pick([0n, 1n, -1n, 2n ** 63n - 1n, 2n ** 64n - 1n, 999n, BigInt(r.int(1e9))])));
    else if (kind === 1) out.push(...varint(BigInt((field << 3) | 1)), ...r.bytes(8));
    else if (kind === 2) out.push(...varint(BigInt((field << 3) | 5)), ...r.bytes(4));
    else if (kind === 3) {
      const s = Buffer.from(r.pick(EVIL_NAMES));
      out.push(...varint(BigInt((field << 3) | 2)), ...varint(BigInt(s.length)), ...s);
    } else if (kind === 4) {
      const s = [0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80, 0x00];
      out.push(...varint(BigInt((field << 3) | 2)), ...varint(BigInt(s.length)), ...s);
    } else if (kind === 5 && depth < 30) {
      const inner = wireMessage(r, depth + 1);
      out.push(...varint(BigInt((field << 3) | 2)), ...varint(BigInt(inner.length)), ...inner);
    } else if (kind === 6) {
      // a length that runs past the end
      out.push(...varint(BigInt((field << 3) | 2)), ...varint(BigInt(1000 + r.int(1e6))), ...r.bytes(r.int(8)));
    } else out.push(...varint(BigInt((field << 3) | r.pick([3, 4, 6, 7]))), ...r.bytes(r.int(4)));
  }
  return out;
}

function deepNesting(levels: number): Uint8Array {
  let inner: number[] = [];
  for (let i = 0; i < levels; i++) inner = [...varint(BigInt((1 << 3) | 2)), ...varint(BigInt(inner.length)), ...inner];
  return Uint8Array.from(inner);
}

interface Method {
  service: ServiceName;
  path: string;
  kind: 'unary' | 'server-stream' | 'client-stream';
  /** A structurally valid request with evil values in it. */
  template(r: Rng): Uint8Array;
}

const enc = <T>(type: { fromPartial(o: object): T; encode(m: T): { finish(): Uint8Array } }, o: object) => type.encode(type.fromPartial(o)).finish();

const methods: Method[] = [
  // learner
  { service: 'learner', path: '/temper.v1.PolicyLearner/CreateRun', kind: 'unary', template: (r) => enc(CreateRunRequest, { runId: r.pick(EVIL_NAMES), spec: { $case: 'specYaml', value: r.pick([`model: { path: "${r.pick(EVIL_NAMES)}" }\nstages: [{ grpo: { steps: 1 } }]`, `stages:\n  - sft: { data: { sources: [{ dataset: { path: "${r.pick(EVIL_NAMES)}" } }] } }`, '{{{{', 'stages: [' + 'x,'.repeat(r.int(3000)) + ']', `name: ${r.pick(EVIL_NAMES)}`, '!!binary AAAA', '&a [*a]']) } }) },
  { service: 'learner', path: '/temper.v1.PolicyLearner/GetRun', kind: 'unary', template: (r) => enc(GetRunRequest, { runId: r.pick(EVIL_NAMES) }) },
  { service: 'learner', path: '/temper.v1.PolicyLearner/ListRuns', kind: 'unary', template: (r) => enc(ListRunsRequest, { states: Array.from({ length: r.pick([1, 3, 100000]) }, () => r.pick([999, -1, 2 ** 31 - 1, 0, 3])) }) },
  { service: 'learner', path: '/temper.v1.PolicyLearner/CancelRun', kind: 'unary', template: (r) => enc(CancelRunRequest, { runId: r.pick(EVIL_NAMES) }) },
  { service: 'learner', path: '/temper.v1.PolicyLearner/WatchRun', kind: 'server-stream', template: (r) => enc(WatchRunRequest, { runId: r.pick(EVIL_NAMES), fromStep: r.pick([0, 2 ** 32 - 1]) }) },
  // generator
  { service: 'generator', path: '/temper.v1.RolloutGenerator/Generate', kind: 'unary', template: (r) => enc(GenerateRequest, { prompts: Array.from({ length: r.pick([1, 2, 50000]) }, () => ({ text: r.pick(EVIL_NAMES), tokenIds: [r.pick([-1, 2 ** 31 - 1, 5])] })), sampling: { maxNewTokens: r.pick([0, 2 ** 31 - 1, 4]), n: r.pick([0, 1, 1e6]), temperature: evilFloat(r), topP: evilFloat(r), topK: r.pick([-1, 0, 1e9]), stopStrings: [r.pick(EVIL_NAMES)] }, minPolicyVersion: r.pick([0, Number.MAX_SAFE_INTEGER]) }) },
  { service: 'generator', path: '/temper.v1.RolloutGenerator/LoadPolicy', kind: 'unary', template: (r) => enc(LoadPolicyRequest, { checkpoint: r.pick(EVIL_NAMES), policyVersion: r.pick([0, 1, Number.MAX_SAFE_INTEGER]) }) },
  { service: 'generator', path: '/temper.v1.RolloutGenerator/GetServingInfo', kind: 'unary', template: () => new Uint8Array() },
  // scorer
  { service: 'scorer', path: '/temper.v1.RewardScorer/Score', kind: 'unary', template: (r) => enc(ScoreRequest, { items: Array.from({ length: r.pick([1, 3, 5000, 100000]) }, () => ({ completion: r.pick(EVIL_NAMES), reference: r.pick(EVIL_NAMES), prompt: r.pick(EVIL_NAMES), completionTokens: r.pick([0, 2 ** 32 - 1]), maxTokens: r.pick([0, 1]) })), spec: { components: [{ name: r.pick(['accuracy', 'format', 'repetition', ...EVIL_NAMES]), weight: evilFloat(r) }] } }) },
  { service: 'scorer', path: '/temper.v1.RewardScorer/ListRewards', kind: 'unary', template: () => new Uint8Array() },
  // checkpoint store
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/GetCheckpoint', kind: 'server-stream', template: (r) => enc(GetCheckpointRequest, { checkpoint: r.pick(EVIL_NAMES), paths: [r.pick(EVIL_NAMES)], chunkSize: r.pick([0, 1, 2 ** 32 - 1]) }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/ListCheckpoints', kind: 'unary', template: (r) => enc(ListCheckpointsRequest, { runId: r.pick(EVIL_NAMES), branch: r.pick(EVIL_NAMES), tag: r.pick(EVIL_NAMES), stage: r.pick(EVIL_NAMES) }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/GetLineage', kind: 'unary', template: (r) => enc(GetLineageRequest, { checkpoint: r.pick(EVIL_NAMES) }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/TagCheckpoint', kind: 'unary', template: (r) => enc(TagCheckpointRequest, { checkpoint: r.pick(EVIL_NAMES), tag: r.pick(EVIL_NAMES) }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/DeleteCheckpoint', kind: 'unary', template: (r) => enc(DeleteCheckpointRequest, { checkpoint: r.pick(EVIL_NAMES), force: true }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/GetUploadStatus', kind: 'unary', template: (r) => enc(GetUploadStatusRequest, { uploadId: r.pick(EVIL_NAMES) }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/StartUpload', kind: 'unary', template: (r) => enc(StartUploadRequest, { header: uploadHeader(r) }) },
  { service: 'checkpoint-store', path: '/temper.v1.CheckpointStore/PutCheckpoint', kind: 'client-stream', template: (r) => enc(PutCheckpointRequest, r.pick([{ part: { $case: 'header', value: uploadHeader(r) } }, { part: { $case: 'chunk', value: { path: r.pick(EVIL_NAMES), offset: r.pick([0, Number.MAX_SAFE_INTEGER]), data: r.bytes(r.int(64)) } } }, { part: { $case: 'commit', value: {} } }])) },
];

function uploadHeader(r: Rng): object {
  return {
    uploadId: r.pick(EVIL_NAMES),
    policyVersion: r.pick([0, Number.MAX_SAFE_INTEGER]),
    manifest: {
      runId: r.pick(EVIL_NAMES),
      branch: r.pick(EVIL_NAMES),
      files: Array.from({ length: r.pick([1, 2, 20000]) }, () => ({ path: r.pick(EVIL_NAMES), size: r.pick([0, 1, Number.MAX_SAFE_INTEGER]), sha256: r.pick(['', 'zz', 'a'.repeat(64)]) })),
    },
  };
}

type CaseKind = 'random-bytes' | 'mutated' | 'wire' | 'evil-values' | 'deep-nesting';

function fuzzCase(r: Rng, m: Method): { kind: CaseKind; messages: Uint8Array[] } {
  const kind = r.pick<CaseKind>(['random-bytes', 'mutated', 'wire', 'wire', 'evil-values', 'evil-values', 'deep-nesting']);
  const one = (): Uint8Array => {
    switch (kind) {
      case 'random-bytes':
        return r.bytes(r.int(300));
      case 'mutated': {
        const b = Uint8Array.from(m.template(r));
        for (let i = 0, n = 1 + r.int(4); i < n && b.length; i++) b[r.int(b.length)] = r.int(256);
        return r.next() < 0.3 ? b.subarray(0, r.int(b.length + 1)) : b;
      }
      case 'wire':
        return Uint8Array.from(wireMessage(r));
      case 'deep-nesting':
        return deepNesting(r.pick([50, 200, 2000]));
      default:
        return m.template(r);
    }
  };
  return { kind, messages: m.kind === 'client-stream' ? Array.from({ length: 1 + r.int(3) }, one) : [one()] };
}

interface Outcome {
  code: grpc.status;
  details: string;
  ms: number;
}

function call(client: grpc.Client, m: Method, messages: Uint8Array[]): Promise<Outcome> {
  const t0 = Date.now();
  const identity = (b: Buffer) => b;
  const opts = { deadline: Date.now() + CALL_DEADLINE_MS };
  return new Promise((resolve) => {
    const done = (err: grpc.ServiceError | null) => resolve({ code: err ? err.code : grpc.status.OK, details: err?.details ?? '', ms: Date.now() - t0 });
    if (m.kind === 'unary') {
      client.makeUnaryRequest(m.path, identity, identity, Buffer.from(messages[0]), new grpc.Metadata(), opts, (err) => done(err));
    } else if (m.kind === 'client-stream') {
      const stream = client.makeClientStreamRequest(m.path, identity, identity, new grpc.Metadata(), opts, (err) => done(err));
      for (const msg of messages) stream.write(Buffer.from(msg));
      stream.end();
    } else {
      const stream = client.makeServerStreamRequest(m.path, identity, identity, Buffer.from(messages[0]), new grpc.Metadata(), opts);
      let received = 0;
      stream.on('data', () => {
        // A watch on something real would stream on: a few messages are answer enough.
        if (++received >= 3) stream.cancel();
      });
      stream.on('error', (err: grpc.ServiceError) => done(err.code === grpc.status.CANCELLED && received > 0 ? null : err));
      stream.on('end', () => done(null));
    }
  });
}

describe('fuzzing every gRPC API', () => {
  let stack: LocalStack;
  let dir: string;
  const clients = new Map<ServiceName, grpc.Client>();
  const report: Record<string, { cases: number; codes: Record<string, number>; kinds: Record<string, number>; unclear: number; hangs: number; slowestMs: number }> = {};
  const failures: string[] = [];
  let seeded: { id: string; dir: string };
  let runId: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-fuzz-'));
    fs.mkdirSync(path.join(dir, 'data'));
    stack = await startLocalStack({ logs: { dir: path.join(dir, 'logs') }, env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), TEMPER_DATA_ROOTS: path.join(dir, 'data'), TEMPER_SCORER_THREADS: '1', TEMPER_ENGINE_THREADS: '1' } });
    for (const s of ['learner', 'generator', 'scorer', 'checkpoint-store'] as const) {
      const { credentials, options } = grpcClientSetup(stack.address(s), stack.clientAuth);
      clients.set(s, new grpc.Client(stack.address(s), credentials, options));
    }
    // What must survive: a checkpoint (tagged) and a run.
    const store = new CheckpointClient(stack.address('checkpoint-store'), stack.clientAuth);
    const modelDir = await makeModelDir(path.join(dir, 'model'));
    const { manifest } = await store.pushDir(modelDir, { runId: 'fuzz-keep' });
    await store.tag(manifest.id, 'keep');
    store.close();
    seeded = { id: manifest.id, dir: modelDir };
    const learner = new LearnerClient(stack.address('learner'), stack.clientAuth);
    const { run } = await learner.createRun({
      spec: { $case: 'specYaml', value: 'name: keep\nmodel: { tokenizer: bytes, config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64, tie_word_embeddings: true } }\nstages: [{ name: rl, grpo: { steps: 100000, prompts_per_step: 1, group_size: 2, task: { uri: "builtin:arithmetic" }, sampling: { max_new_tokens: 4 } } }]\n' },
    });
    runId = run!.runId;
    // Cancelled at once: the run's record is what must survive, not its training.
    await learner.cancelRun(runId);
    learner.close();
  }, 120000);

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`fuzz report (seed ${SEED}, ${CASES} cases per service): ${JSON.stringify(report)}\n`);
  });

  it.each(['checkpoint-store', 'scorer', 'generator', 'learner'] as const)('%s answers every malformed request with a clear status and stays up', async (service) => {
    const r = rng(SEED + service.length);
    const own = methods.filter((m) => m.service === service);
    const client = clients.get(service)!;
    for (let i = 0; i < CASES; i++) {
      const m = own[i % own.length];
      const c = fuzzCase(r, m);
      const out = await call(client, m, c.messages);
      const entry = (report[m.path] ??= { cases: 0, codes: {}, kinds: {}, unclear: 0, hangs: 0, slowestMs: 0 });
      entry.cases++;
      entry.codes[grpc.status[out.code]] = (entry.codes[grpc.status[out.code]] ?? 0) + 1;
      entry.kinds[c.kind] = (entry.kinds[c.kind] ?? 0) + 1;
      entry.slowestMs = Math.max(entry.slowestMs, out.ms);
      if (out.code === grpc.status.DEADLINE_EXCEEDED) entry.hangs++;
      if (!CLEAR.has(out.code) || (out.code !== grpc.status.OK && !out.details)) {
        entry.unclear++;
        // The request's first bytes go with it, to reproduce from.
        if (failures.length < 20) failures.push(`${m.path} case ${i} (${c.kind}): ${grpc.status[out.code]} ${out.details} [request ${Buffer.from(c.messages[0].subarray(0, 160)).toString('base64')}]`);
      }
    }
    // Oversize: one message past the server's limit.
    const big = await call(client, own[0], [new Uint8Array(65 * 1024 * 1024)]);
    expect(big.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(failures).toEqual([]);
    expect(await checkHealth(stack.address(service), '', 5000, stack.clientAuth.security)).toBe('SERVING');
    expect(stack.services.filter((s) => s.name === service).every((s) => s.process.exitCode === null && s.process.signalCode === null)).toBe(true);
  }, 600000);

  it('kept what the services held: the tagged checkpoint byte for byte, the run', async () => {
    const store = new CheckpointClient(stack.address('checkpoint-store'), stack.clientAuth);
    const learner = new LearnerClient(stack.address('learner'), stack.clientAuth);
    try {
      const pulled = path.join(dir, 'pulled');
      const { manifest } = await store.pullDir('keep', pulled);
      expect(manifest.id).toBe(seeded.id);
      await expectSameTree(seeded.dir, pulled);
      const run = (await learner.listRuns()).runs.find((x) => x.runId === runId);
      expect(run?.name).toBe('keep');
    } finally {
      store.close();
      learner.close();
    }
  }, 60000);
});
