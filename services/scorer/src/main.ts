#!/usr/bin/env node
// temper-scorer: turns completions into rewards, over gRPC (RewardScorer) and JetStream
// (rollout groups in, scored groups out), scoring on a pool of worker threads.
import { connectBus } from '@temper/bus';
import { createLogger, runService, serviceSettings, logRefusal, startGrpcServer } from '@temper/service';
import { initTracing } from '@temper/telemetry';
import { rewardScorerBinding } from './grpc';
import { ScoringPool } from './pool';
import { scorerSettings } from './settings';
import { startRolloutWorker } from './worker';

const log = createLogger('scorer');

runService(log, async () => {
  const settings = serviceSettings('scorer');
  const scorer = scorerSettings();
  const tracing = initTracing('scorer');
  const pool = new ScoringPool({ ...scorer, onReplace: (reason) => log.warn('replaced a scoring thread', { reason }) });
  const bus = await connectBus(settings.natsUrl, 'temper-scorer', { service: 'scorer' });
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [rewardScorerBinding(pool, { maxItems: scorer.maxItems, log, tracer: tracing.tracer })], onRefused: logRefusal(log) });
  const worker = startRolloutWorker(bus, pool, { ...scorer, log, tracer: tracing.tracer });
  log.info('serving', { address: grpc.address, nats: settings.natsUrl, threads: pool.threads, consumer: scorer.consumer, plugins: scorer.plugins, traces: tracing.endpoint });
  return [() => tracing.shutdown(), () => pool.close(), () => bus.close(), () => worker.stop(), () => grpc.stop()];
});
