#!/usr/bin/env node
// A pod's health probe when its gRPC port speaks TLS: Kubernetes' own gRPC probes cannot, so
// the chart runs this as an exec probe. It asks grpc.health.v1 on this pod's port over TLS
// with the pod's own certificate settings (TEMPER_TLS_*; its certificate names localhost)
// and exits 0 when the service reports SERVING.
//   node packages/service/dist/health-probe.js <port> [service]
import { checkHealth } from './health-client';
import { clientSecurityFromEnv } from './transport-security';

async function main(argv: string[]): Promise<number> {
  const [port, service = ''] = argv;
  if (!/^\d+$/.test(port ?? '')) {
    process.stderr.write('usage: health-probe.js <port> [service]\n');
    return 2;
  }
  const security = clientSecurityFromEnv();
  const probeSecurity = security.kind === 'tls' ? { ...security, serverName: security.serverName ?? 'localhost' } : security;
  const status = await checkHealth(`127.0.0.1:${port}`, service, Number(process.env.TEMPER_PROBE_TIMEOUT_MS) || 4000, probeSecurity);
  if (status === 'SERVING') return 0;
  process.stderr.write(`health: ${status}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`health check failed: ${err.message}\n`);
    process.exit(1);
  },
);
