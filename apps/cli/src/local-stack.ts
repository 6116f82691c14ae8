// A whole Temper on one machine: a nats-server (unless NATS_URL points at one) and the
// four services as separate processes on loopback ports, each checked healthy over gRPC.
// The services speak plaintext on loopback unless the environment gives them certificates
// (TEMPER_TLS_CERT, TEMPER_TLS_KEY, TEMPER_TLS_CA), and their control calls need a token: the
// caller's TEMPER_CONTROL_TOKENS, else one made for this stack (`clientAuth` carries it).
import { freePort, NatsServer, startNatsServer, terminate } from '@temper/bus';
import { addressEnvVar, ClientAuthOptions, ClientSecurity, clientSecurityFromEnv, serviceNamesInOrder, ServiceName, waitForServing } from '@temper/service';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
  /** What a client of this stack needs: its transport security and a control token. */
  clientAuth: Required<ClientAuthOptions>;
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
  /** Settings for one service only (its NATS credentials, ...), over `env`. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
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
  const { env: securityEnv, clientAuth } = stackSecurity({ ...process.env, ...opts.env });

  const spawnService = (name: ServiceName, address: string): ServiceProcess => {
    const [out, err] = logTargets(opts.logs, name);
    const child = spawn(process.execPath, [serviceEntry(name)], {
      // A local learner may read the files under the directory it is started from (its data roots).
      env: { TEMPER_DATA_ROOTS: process.cwd(), ...process.env, ...opts.env, ...opts.serviceEnv?.[name], ...securityEnv, NATS_URL: natsUrl, ...addresses, [addressEnvVar(name)]: address },
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
    await Promise.all(first.map((s) => readyOrExited(s, clientAuth.security)));
  } catch (err) {
    await stop();
    throw err;
  }
  const running = (name: ServiceName) => services.filter((s) => s.name === name && s.process.exitCode === null && s.process.signalCode === null);
  return {
    natsUrl,
    services,
    clientAuth,
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
      await readyOrExited(s, clientAuth.security);
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

/**
 * The services' security settings and what their clients need. Plaintext is asked for only
 * when no certificate is given (every address of the stack is a loopback one); a stack
 * without the caller's tokens gets a random control token that the services also present to
 * each other.
 */
function stackSecurity(env: NodeJS.ProcessEnv): { env: Record<string, string>; clientAuth: Required<ClientAuthOptions> } {
  const out: Record<string, string> = {};
  out.TEMPER_PLAINTEXT = env.TEMPER_TLS_CERT ? '' : 'loopback';
  const security: ClientSecurity = clientSecurityFromEnv({ ...env, ...out });
  let token = env.TEMPER_AUTH_TOKEN ?? '';
  if (!env.TEMPER_CONTROL_TOKENS && !env.TEMPER_CONTROL_IDENTITIES) {
    token = randomBytes(24).toString('base64url');
    Object.assign(out, { TEMPER_AUTH: 'enforce', TEMPER_CONTROL_TOKENS: token, TEMPER_AUTH_TOKEN: token });
  }
  return { env: out, clientAuth: { security, token } };
}

/**
 * How long a started service may take to serve. A process that dies is noticed at once, so
 * this only bounds a slow start: on a loaded 2-core machine, a service started beside four
 * others (or restarted by the chaos run) took over 30 s.
 */
const SERVING_TIMEOUT_MS = 120_000;

async function readyOrExited(s: ServiceProcess, security: ClientSecurity): Promise<void> {
  let onExit: ((code: number | null) => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = (code) => reject(new Error(`temper-${s.name} exited with code ${code} while starting`));
    s.process.once('exit', onExit);
  });
  try {
    await Promise.race([waitForServing(s.address, '', SERVING_TIMEOUT_MS, security), exited]);
  } finally {
    s.process.off('exit', onExit!);
  }
}

