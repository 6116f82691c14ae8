#!/usr/bin/env node
// temper-learner: runs GRPO and the rest of the recipe; its PolicyLearner API arrives with the run-loop issue.
import { connectBus } from '@temper/bus';
import { createLogger, runService, serviceSettings, startGrpcServer } from '@temper/service';

const log = createLogger('learner');

runService(log, async () => {
  const settings = serviceSettings('learner');
  const bus = await connectBus(settings.natsUrl, 'temper-learner');
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [] });
  log.info('serving', { address: grpc.address, nats: settings.natsUrl });
  return [() => bus.close(), () => grpc.stop()];
});
