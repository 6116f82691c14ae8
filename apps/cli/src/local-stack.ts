// A whole Temper on one machine: a nats-server (unless NATS_URL points at one) and the
// four services as separate processes on loopback ports, each checked healthy over gRPC.
import { freePort, NatsServer, startNatsServer, terminate } from '@temper/bus';
import { addressEnvVar, serviceNamesInOrder, ServiceName, waitForServing } from '@temper/service';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ServiceProcess {
  name: ServiceName;
  address: string;
  process: ChildProcess;
}

export interface LocalStack {
  natsUrl: string;
  services: ServiceProcess[];
  /** Where a service listens, by name. */
  address(name: ServiceName): string;
  /** Kills a service at once (SIGKILL), as a crash would. */
  kill(name: ServiceName): Promise<void>;
  /** Starts another process of a service (at the same address when the old one is gone). */
  start(name: ServiceName): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /** Use this NATS instead of starting one (default: $NATS_URL, else start one). */
  natsUrl?: string;
  /** Where service logs go: this process's stderr (default), nowhere, or one file per service in a directory. */
  logs?: 'inherit' | 'ignore' | { dir: string };
  env?: Record<string, string>;
}

export function serviceEntry(name: ServiceName): string {
  return require.resolve(`@temper/${name}/dist/main.js`);
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  let nats: NatsServer | undefined;
  const natsUrl = opts.natsUrl ?? process.env.NATS_URL ?? (nats = await startNatsServer()).url;
  const services: ServiceProcess[] = [];
  // Every service learns every other's address (the learner calls the checkpoint store, ...).
  const addresses: Record<string, string> = {};
  for (const name of serviceNamesInOrder) addresses[addressEnvVar(name)] = `127.0.0.1:${await freePort()}`;

  const spawnService = (name: ServiceName, address: string): ServiceProcess => {
    const [out, err] = logTargets(opts.logs, name);
    const child = spawn(process.execPath, [serviceEntry(name)], {
      // A local learner may read the files under the directory it is started from (its data roots).
      env: { TEMPER_DATA_ROOTS: process.cwd(), ...process.env, ...opts.env, NATS_URL: natsUrl, ...addresses, [addressEnvVar(name)]: address },
      stdio: ['ignore', out, err],
    });
    if (typeof out === 'number') fs.closeSync(out); // the child has its own copy
    const s = { name, address, process: child };
    services.push(s);
    return s;
  };
  const stop = async () => {
    await Promise.all(services.map((s) => terminate(s.process, 10000)));
    await nats?.stop();
  };
  try {
    const first = serviceNamesInOrder.map((name) => spawnService(name, addresses[addressEnvVar(name)]));
    await Promise.all(first.map((s) => readyOrExited(s)));
  } catch (err) {
    await stop();
    throw err;
  }
  const running = (name: ServiceName) => services.filter((s) => s.name === name && s.process.exitCode === null && s.process.signalCode === null);
  return {
    natsUrl,
    services,
    address: (name) => addresses[addressEnvVar(name)],
    kill: async (name) => {
      await Promise.all(
        running(name).map((s) => new Promise<void>((resolve) => {
          s.process.once('exit', () => resolve());
          s.process.kill('SIGKILL');
        })),
      );
    },
    start: async (name) => {
      // A second replica of a service needs its own port; a restarted one takes the old address.
      const address = running(name).length ? `127.0.0.1:${await freePort()}` : addresses[addressEnvVar(name)];
      const s = spawnService(name, address);
      await readyOrExited(s);
      return s;
    },
    stop,
  };
}

function logTargets(logs: LocalStackOptions['logs'], name: ServiceName): ['inherit' | 'ignore' | number, 'inherit' | 'ignore' | number] {
  if (logs === undefined || logs === 'inherit' || logs === 'ignore') return [logs ?? 'inherit', logs ?? 'inherit'];
  fs.mkdirSync(logs.dir, { recursive: true });
  const fd = fs.openSync(path.join(logs.dir, `${name}.log`), 'a');
  return [fd, fd];
}

async function readyOrExited(s: ServiceProcess): Promise<void> {
  let onExit: ((code: number | null) => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = (code) => reject(new Error(`temper-${s.name} exited with code ${code} while starting`));
    s.process.once('exit', onExit);
  });
  try {
    await Promise.race([waitForServing(s.address, '', 30000), exited]);
  } finally {
    s.process.off('exit', onExit!);
  }
}

