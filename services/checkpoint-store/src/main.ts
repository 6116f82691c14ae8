#!/usr/bin/env node
// temper-checkpoint-store: keeps immutable checkpoints with lineage.
import { connectBus } from '@temper/bus';
import { createLogger, runService, serviceSettings, spaceOutFullCollections, logRefusal, startGrpcServer } from '@temper/service';
import { initTracing } from '@temper/telemetry';
import { widenFlowControl } from './flow-control';
import { checkpointStoreBinding } from './grpc';
import { openStore } from './open';
import { storeSettings } from './settings';

const log = createLogger('checkpoint-store');
spaceOutFullCollections();

runService(log, async () => {
  const settings = serviceSettings('checkpoint-store');
  const storage = storeSettings();
  const tracing = initTracing('checkpoint-store');
  const bus = await connectBus(settings.natsUrl, 'temper-checkpoint-store', { service: 'checkpoint-store' });
  const store = await openStore(storage, bus, log);
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [checkpointStoreBinding(store, { log, tracer: tracing.tracer })], onRefused: logRefusal(log) });
  widenFlowControl(grpc.server);
  log.info('serving', { address: grpc.address, nats: settings.natsUrl, backend: store.backend.location, keepLast: storage.keepLast, quota: storage.quota, traces: tracing.endpoint });
  return [() => tracing.shutdown(), () => bus.close(), () => store.close(), () => grpc.stop()];
});
