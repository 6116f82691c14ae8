// A service process's life: read its settings from the environment, start, and on
// SIGINT/SIGTERM stop everything it started, in reverse order, once.
import { serveMetricsFromEnv } from '@temper/telemetry';
import type { Logger } from './log';
import { addressEnvVar, defaultPorts, ServiceName } from './ports';

export interface ServiceSettings {
  /** host:port for gRPC: TEMPER_<SERVICE>_ADDR, else TEMPER_GRPC_ADDR, else 127.0.0.1:<default port>. */
  grpcAddress: string;
  /** NATS_URL, default nats://127.0.0.1:4222. */
  natsUrl: string;
}

export function serviceSettings(service: ServiceName): ServiceSettings {
  const env = process.env;
  return {
    grpcAddress: env[addressEnvVar(service)] ?? env.TEMPER_GRPC_ADDR ?? `127.0.0.1:${defaultPorts[service]}`,
    natsUrl: env.NATS_URL ?? 'nats://127.0.0.1:4222',
  };
}

export type Stopper = () => Promise<void> | void;

/**
 * Runs `start`, which returns the stoppers of what it started; on a signal they run in
 * reverse order and the process exits. A failed start logs and exits non-zero. Prometheus
 * metrics are served on TEMPER_METRICS_ADDR when it is set.
 */
export function runService(log: Logger, start: () => Promise<Stopper[]>): void {
  let stoppers: Stopper[] = [];
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    for (const s of stoppers.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn('error while stopping', { err });
      }
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  Promise.all([serveMetricsFromEnv(), start()]).then(
    ([stopMetrics, s]) => {
      stoppers = [stopMetrics, ...s];
    },
    (err) => {
      log.error('failed to start', { err });
      process.exit(1);
    },
  );
}
