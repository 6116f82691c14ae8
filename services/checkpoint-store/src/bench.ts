// npm run bench:checkpoints [-- --json] [--gb 1] [--shards 4] [--chunk-kib 4096] [--runs 3]
//
// Put and get throughput of one checkpoint over loopback gRPC with the filesystem backend:
// a store process (this file with --serve) and this process as the client, as the learner
// and generators would use it. Put time includes hashing the files on the client; get
// time includes verifying them and writing them to disk. Each run starts from an empty
// store (the previous run's checkpoint is deleted, so nothing is deduplicated away); the
// reported rates are the medians, with every run listed. Temporary files are removed.
import { CheckpointClient } from '@temper/checkpoint-client';
import { spaceOutFullCollections, startGrpcServer } from '@temper/service';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FsBackend } from './backends/fs';
import { widenFlowControl } from './flow-control';
import { checkpointStoreBinding } from './grpc';
import { CheckpointStore } from './store';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function serve(root: string): Promise<void> {
  spaceOutFullCollections(); // as main.ts does for the real store
  const store = await CheckpointStore.open({ backend: await FsBackend.open(path.join(root, 'store')), stagingDir: path.join(root, 'store', 'uploads') });
  // Both ends in this process over loopback: plaintext and no auth, as the benchmark measures transfer alone.
  const server = await startGrpcServer({ address: '127.0.0.1:0', services: [checkpointStoreBinding(store)], security: { kind: 'plaintext-loopback' }, auth: { mode: 'none' } });
  widenFlowControl(server.server);
  process.send!({ address: server.address });
  // The client asks for CPU time used so far, to report CPU per byte beside wall-clock rates.
  process.on('message', () => process.send!({ cpu: process.cpuUsage() }));
  process.on('disconnect', () => void server.stop(100).then(() => process.exit(0)));
}

async function writeCheckpoint(dir: string, totalBytes: number, shards: number): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', bench: true }));
  const per = Math.floor(totalBytes / shards);
  const block = 16 << 20;
  for (let i = 1; i <= shards; i++) {
    const fh = await fsp.open(path.join(dir, `model-${String(i).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`), 'w');
    for (let written = 0; written < per; written += block) await fh.write(randomBytes(Math.min(block, per - written)));
    await fh.close();
  }
}

async function bench(): Promise<void> {
  spaceOutFullCollections(); // the client side too, as the learner, the generator and temper ckpt do
  const json = process.argv.includes('--json');
  const bytes = Math.round(arg('gb', 1) * 1e9);
  const shards = arg('shards', 4);
  const chunkBytes = arg('chunk-kib', 4096) * 1024;
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'temper-ckpt-bench-'));
  const child = fork(__filename, ['--serve', root], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { address } = await new Promise<{ address: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { address: string }));
      child.once('exit', (code) => reject(new Error(`bench store exited with code ${code}`)));
    });
    const src = path.join(root, 'src');
    await writeCheckpoint(src, bytes, shards);
    const storeCpu = () =>
      new Promise<number>((resolve) => {
        child.once('message', (m) => resolve(cpuSeconds((m as { cpu: NodeJS.CpuUsage }).cpu)));
        child.send('cpu');
      });
    const client = new CheckpointClient(address, { security: { kind: 'plaintext-loopback' }, token: '' });
    try {
      const runs: Run[] = [];
      for (let i = 0; i < arg('runs', 3); i++) runs.push(await once(client, storeCpu, src, path.join(root, `dest-${i}`), chunkBytes));
      const total = runs[0].bytes;
      const perGb = (cpu: number) => round(cpu / (total / 1e9));
      const report = {
        bench: 'checkpoints',
        backend: 'fs',
        transport: 'grpc loopback, separate store process',
        bytes: total,
        files: runs[0].files,
        chunk_bytes: chunkBytes,
        runs: runs.length,
        put_mb_s: median(runs.map((r) => r.putMbS)),
        get_mb_s: median(runs.map((r) => r.getMbS)),
        put_mb_s_runs: runs.map((r) => r.putMbS),
        get_mb_s_runs: runs.map((r) => r.getMbS),
        // CPU seconds per GB moved (medians), by the client and by the store process: what the
        // rates above cost, and a figure that means more when other work shares the machine.
        put_cpu_s_per_gb: { client: perGb(median(runs.map((r) => r.cpu.putClient))), store: perGb(median(runs.map((r) => r.cpu.putStore))) },
        get_cpu_s_per_gb: { client: perGb(median(runs.map((r) => r.cpu.getClient))), store: perGb(median(runs.map((r) => r.cpu.getStore))) },
        cpus: os.cpus().length,
        load_avg_1m: round(os.loadavg()[0]),
      };
      if (json) process.stdout.write(JSON.stringify(report) + '\n');
      else process.stdout.write(`put ${report.put_mb_s} MB/s, get ${report.get_mb_s} MB/s (medians of ${runs.length}) for ${(total / 1e9).toFixed(2)} GB in ${report.files} files\n`);
    } finally {
      client.close();
    }
  } finally {
    child.disconnect();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await fsp.rm(root, { recursive: true, force: true });
  }
}

interface Run {
  bytes: number;
  files: number;
  putMbS: number;
  getMbS: number;
  cpu: { putClient: number; putStore: number; getClient: number; getStore: number };
}

/** One push and one pull of `src`; the checkpoint is deleted afterwards so the next run sends everything again. */
async function once(client: CheckpointClient, storeCpu: () => Promise<number>, src: string, dest: string, chunkBytes: number): Promise<Run> {
  const c0 = cpuSeconds(process.cpuUsage());
  const s0 = await storeCpu();
  const t0 = performance.now();
  const pushed = await client.pushDir(src, { runId: 'bench', branch: 'main', step: 1 }, { chunkBytes });
  const putS = (performance.now() - t0) / 1000;
  const c1 = cpuSeconds(process.cpuUsage());
  const s1 = await storeCpu();
  const bytes = pushed.manifest.files.reduce((n, f) => n + f.size, 0);
  if (pushed.bytesSent !== bytes) throw new Error(`the store already held part of the checkpoint (${pushed.bytesSent} of ${bytes} bytes sent)`);
  const t1 = performance.now();
  await client.pullDir(pushed.manifest.id, dest, { chunkBytes });
  const getS = (performance.now() - t1) / 1000;
  const c2 = cpuSeconds(process.cpuUsage());
  const s2 = await storeCpu();
  await client.delete(pushed.manifest.id, true);
  await fsp.rm(dest, { recursive: true, force: true });
  return {
    bytes,
    files: pushed.manifest.files.length,
    putMbS: round(bytes / 1e6 / putS),
    getMbS: round(bytes / 1e6 / getS),
    cpu: { putClient: c1 - c0, putStore: s1 - s0, getClient: c2 - c1, getStore: s2 - s1 },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : round((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
}

const round = (x: number) => Math.round(x * 100) / 100;
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

if (process.argv[2] === '--serve') void serve(process.argv[3]);
else
  bench().catch((err) => {
    process.stderr.write(`bench:checkpoints: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
