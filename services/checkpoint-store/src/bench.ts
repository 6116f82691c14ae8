// npm run bench:checkpoints [-- --json] [--gb 1] [--shards 4] [--chunk-kib 1024]
//
// Put and get throughput of one checkpoint over loopback gRPC with the filesystem backend:
// a store process (this file with --serve) and this process as the client, as the learner
// and generators would use it. Put time includes hashing the files on the client; get
// time includes verifying them and writing them to disk. Temporary files are removed.
import { startGrpcServer } from '@temper/service';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FsBackend } from './backends/fs';
import { CheckpointClient } from './client';
import { widenFlowControl } from './flow-control';
import { checkpointStoreBinding } from './grpc';
import { CheckpointStore } from './store';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function serve(root: string): Promise<void> {
  const store = await CheckpointStore.open({ backend: await FsBackend.open(path.join(root, 'store')), stagingDir: path.join(root, 'store', 'uploads') });
  const server = await startGrpcServer({ address: '127.0.0.1:0', services: [checkpointStoreBinding(store)] });
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
  const json = process.argv.includes('--json');
  const bytes = Math.round(arg('gb', 1) * 1e9);
  const shards = arg('shards', 4);
  const chunkBytes = arg('chunk-kib', 1024) * 1024;
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
    const client = new CheckpointClient(address);
    try {
      const c0 = cpuSeconds(process.cpuUsage());
      const s0 = await storeCpu();
      const t0 = performance.now();
      const pushed = await client.pushDir(src, { runId: 'bench', branch: 'main', step: 1 }, { chunkBytes });
      const putS = (performance.now() - t0) / 1000;
      const c1 = cpuSeconds(process.cpuUsage());
      const s1 = await storeCpu();
      const total = pushed.manifest.files.reduce((n, f) => n + f.size, 0);
      const t1 = performance.now();
      await client.pullDir(pushed.manifest.id, path.join(root, 'dest'), { chunkBytes });
      const getS = (performance.now() - t1) / 1000;
      const c2 = cpuSeconds(process.cpuUsage());
      const s2 = await storeCpu();
      const report = {
        bench: 'checkpoints',
        backend: 'fs',
        transport: 'grpc loopback, separate store process',
        bytes: total,
        files: pushed.manifest.files.length,
        chunk_bytes: chunkBytes,
        put_s: round(putS),
        get_s: round(getS),
        put_mb_s: round(total / 1e6 / putS),
        get_mb_s: round(total / 1e6 / getS),
        // CPU seconds spent per GB moved, by the client and by the store process: what the
        // rates above cost, and a figure that holds when other work shares the machine.
        put_cpu_s_per_gb: { client: round((c1 - c0) / (total / 1e9)), store: round((s1 - s0) / (total / 1e9)) },
        get_cpu_s_per_gb: { client: round((c2 - c1) / (total / 1e9)), store: round((s2 - s1) / (total / 1e9)) },
        cpus: os.cpus().length,
        load_avg_1m: round(os.loadavg()[0]),
      };
      if (json) process.stdout.write(JSON.stringify(report) + '\n');
      else process.stdout.write(`put ${report.put_mb_s} MB/s (${report.put_s} s), get ${report.get_mb_s} MB/s (${report.get_s} s) for ${(total / 1e9).toFixed(2)} GB in ${report.files} files\n`);
    } finally {
      client.close();
    }
  } finally {
    child.disconnect();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await fsp.rm(root, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

if (process.argv[2] === '--serve') void serve(process.argv[3]);
else
  bench().catch((err) => {
    process.stderr.write(`bench:checkpoints: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
