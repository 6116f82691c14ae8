#!/usr/bin/env node
// temper-checkpoint-store: keeps immutable checkpoints with lineage.
import { connectBus } from '@temper/bus';
import { createLogger, runService, serviceSettings, startGrpcServer } from '@temper/service';

const log = createLogger('checkpoint-store');

runService(log, async () => {
  const settings = serviceSettings('checkpoint-store');
  const bus = await connectBus(settings.natsUrl, 'temper-checkpoint-store');
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [] });
  log.info('serving', { address: grpc.address, nats: settings.natsUrl });
  return [() => bus.close(), () => grpc.stop()];
});
