#!/usr/bin/env node
// temper-scorer: turns completions into rewards.
import { connectBus } from '@temper/bus';
import { createLogger, runService, serviceSettings, startGrpcServer } from '@temper/service';

const log = createLogger('scorer');

runService(log, async () => {
  const settings = serviceSettings('scorer');
  const bus = await connectBus(settings.natsUrl, 'temper-scorer');
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [] });
  log.info('serving', { address: grpc.address, nats: settings.natsUrl });
  return [() => bus.close(), () => grpc.stop()];
});
