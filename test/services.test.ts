// Each of the four services as its own process, on loopback, against the harness's
// nats-server: healthy over grpc.health.v1 and describing the contracts by reflection.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { serviceNames } from '@temper/proto';
import { freePort, startNatsServer } from '@temper/bus';
import { checkHealth, waitForServing } from '@temper/service';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalStack, serviceEntry, startLocalStack } from '../apps/cli/src/local-stack';

describe('the four services', () => {
  let stack: LocalStack;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-services-'));
  beforeAll(async () => {
    // Its own nats-server: this stack's work-queue consumers and runs must not meet other tests'.
    stack = await startLocalStack({ logs: 'ignore', env: { TEMPER_CHECKPOINT_DIR: dir } });
  });
  afterAll(async () => {
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each(['generator', 'scorer', 'learner', 'checkpoint-store'] as const)('%s answers its health check', async (name) => {
    expect(await checkHealth(stack.address(name))).toBe('SERVING');
  });

  it('reports an unknown service as NOT_FOUND', async () => {
    await expect(checkHealth(stack.address('scorer'), 'no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('lists Temper services through server reflection', async () => {
    const services = await listByReflection(stack.address('learner'));
    expect(services).toEqual(expect.arrayContaining([...Object.values(serviceNames), 'grpc.health.v1.Health']));
  });
});

async function listByReflection(address: string): Promise<string[]> {
  const protoFile = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { keepCase: true })) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (res: { list_services_response?: { service: { name: string }[] } }) => {
        resolve((res.list_services_response?.service ?? []).map((s) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
  } finally {
    client.close();
  }
}

describe('service metrics', () => {
  it('serves Prometheus metrics, gRPC calls counted, when TEMPER_METRICS_ADDR is set', async () => {
    const nats = await startNatsServer();
    const [grpcPort, metricsPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [serviceEntry('scorer')], {
      env: { ...process.env, NATS_URL: nats.url, TEMPER_SCORER_ADDR: `127.0.0.1:${grpcPort}`, TEMPER_METRICS_ADDR: `127.0.0.1:${metricsPort}` },
      stdio: 'ignore',
    });
    try {
      await waitForServing(`127.0.0.1:${grpcPort}`);
      await checkHealth(`127.0.0.1:${grpcPort}`);
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toMatch(/^temper_grpc_server_handled_total\{method="\/grpc.health.v1.Health\/Check",code="OK"\} [1-9]\d*$/m);
      expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await nats.stop();
    }
  });
});
