#!/usr/bin/env node
// temper-learner: owns runs (stages, batches, losses, optimizer, checkpoints) and serves
// the PolicyLearner API.
import { connectBus } from '@temper/bus';
import { CheckpointClient, checkpointStoreAddress } from '@temper/checkpoint-client';
import { createLogger, runService, serviceSettings, spaceOutFullCollections, logRefusal, startGrpcServer } from '@temper/service';
import { initTracing } from '@temper/telemetry';
import * as os from 'node:os';
import { DataRoots } from './data-roots';
import { policyLearnerService } from './grpc';
import { RunManager } from './runs/manager';

const log = createLogger('learner');
// Its large allocations are weights and checkpoint streams (buffers, not objects): see @temper/service gc.ts.
spaceOutFullCollections();

runService(log, async () => {
  const settings = serviceSettings('learner');
  const tracing = initTracing('learner');
  const bus = await connectBus(settings.natsUrl, 'temper-learner', { service: 'learner' });
  const store = new CheckpointClient(checkpointStoreAddress());
  const runs = new RunManager({
    bus,
    store,
    log,
    tracer: tracing.tracer,
    threads: Number(process.env.TEMPER_ENGINE_THREADS) || os.availableParallelism(),
    rolloutTimeoutMs: Number(process.env.TEMPER_ROLLOUT_TIMEOUT_S || 600) * 1000,
    dataRoots: DataRoots.fromEnv(),
  });
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [policyLearnerService(runs)], onRefused: logRefusal(log) });
  const resumed = await runs.resumeUnfinished();
  log.info('serving', { address: grpc.address, nats: settings.natsUrl, resumed, dataRoots: runs.dataRoots.roots });
  return [() => tracing.shutdown(), () => bus.close(), () => store.close(), () => runs.shutdown(), () => grpc.stop()];
});
