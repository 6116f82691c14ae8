// Starts a private nats-server with JetStream for local stacks and tests: a free loopback
// port, its store in a temporary directory, gone when stopped.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  pid: number;
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** The binary to run (default: `nats-server` on PATH, or $NATS_SERVER_BIN). */
  bin?: string;
  /** Loopback port; 0 (default) picks a free one. */
  port?: number;
  /** How long to wait for the server to accept connections. */
  readyTimeoutMs?: number;
  /**
   * JetStream's store: kept when the server stops, so a server started again on it (same
   * port) finds its streams and consumers (default: a temporary directory, removed on stop).
   */
  storeDir?: string;
  /** More nats-server arguments (e.g. --user/--pass). */
  args?: string[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = opts.bin ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const port = opts.port || (await freePort());
  const ownStore = !opts.storeDir;
  const storeDir = opts.storeDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'temper-nats-'));
  const child = spawn(bin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port), ...(opts.args ?? [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const exited = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(
        err.code === 'ENOENT'
          ? new Error(`nats-server was not found (${bin}). Install it: sudo apt-get install -y nats-server`)
          : err,
      ),
    );
    child.once('exit', (code) => resolve(new Error(`nats-server exited with code ${code} before it was ready:\n${log}`)));
  });
  const ready = waitForPort(port, opts.readyTimeoutMs ?? 10000);
  const outcome = await Promise.race([ready.then(() => null), exited]);
  if (outcome) {
    if (ownStore) fs.rmSync(storeDir, { recursive: true, force: true });
    throw outcome;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    pid: child.pid!,
    stop: () => stopProcess(child, ownStore ? storeDir : undefined),
  };
}

async function stopProcess(child: ChildProcess, storeDir: string | undefined): Promise<void> {
  await terminate(child, 5000);
  if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
}

/** SIGTERM, then SIGKILL if the process has not exited after graceMs; resolves once it is gone. */
export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not accept connections on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
