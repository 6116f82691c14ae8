#!/usr/bin/env node
// temper-generator: samples completions from the served policy (engine); its RolloutGenerator API and rollout worker arrive with the run-loop issue.
import { connectBus } from '@temper/bus';
import { createLogger, runService, serviceSettings, startGrpcServer } from '@temper/service';

const log = createLogger('generator');

runService(log, async () => {
  const settings = serviceSettings('generator');
  const bus = await connectBus(settings.natsUrl, 'temper-generator');
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [] });
  log.info('serving', { address: grpc.address, nats: settings.natsUrl });
  return [() => bus.close(), () => grpc.stop()];
});
