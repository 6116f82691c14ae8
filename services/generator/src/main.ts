#!/usr/bin/env node
// temper-generator: samples completions from the served policy with the engine.
//   policy.ts     what is served, and swapping to new policy versions between batches
//   worker.ts     the JetStream worker: rollout requests in, rollout groups out
//   batcher.ts    which requests share an engine call; seeds and message ids
//   sampling.ts   checking requests, engine options, completions with stop strings applied
//   grpc.ts       the RolloutGenerator API (Generate, LoadPolicy, GetServingInfo)
import { connectBus } from '@temper/bus';
import { CheckpointClient, checkpointStoreAddress } from '@temper/checkpoint-client';
import { createLogger, runService, serviceSettings, spaceOutFullCollections, logRefusal, startGrpcServer } from '@temper/service';
import { initTracing } from '@temper/telemetry';
import { rolloutGeneratorBinding } from './grpc';
import { PolicyManager } from './policy';
import { generatorSettings } from './settings';
import { RolloutWorker } from './worker';

const log = createLogger('generator');
// Its large allocations are weights and checkpoint streams (buffers, not objects): see @temper/service gc.ts.
spaceOutFullCollections();

runService(log, async () => {
  const settings = serviceSettings('generator');
  const g = generatorSettings();
  const tracing = initTracing('generator', { attributes: { 'temper.generator_id': g.generatorId } });
  const bus = await connectBus(settings.natsUrl, 'temper-generator', { service: 'generator' });
  const store = new CheckpointClient(checkpointStoreAddress());
  const policy = new PolicyManager({ bus, store, log, threads: g.threads, precision: g.precision, batchInvariant: g.batchInvariant });
  if (g.checkpoint) await policy.loadPolicy(g.checkpoint, g.policyVersion);
  const worker = new RolloutWorker({
    bus,
    policy,
    log,
    tracer: tracing.tracer,
    generatorId: g.generatorId,
    consumer: g.consumer,
    filterSubject: g.filterSubject,
    ackWaitMs: g.ackWaitMs,
    maxBatchGroups: g.maxBatchGroups,
    maxBatchSequences: g.maxBatchSequences,
    lingerMs: g.lingerMs,
    aheadWaitMs: g.aheadWaitMs,
    maxDeliveries: g.maxDeliveries,
  });
  await worker.start();
  const grpc = await startGrpcServer({ address: settings.grpcAddress, services: [rolloutGeneratorBinding({ policy, tracer: tracing.tracer, log, generatorId: g.generatorId })], onRefused: logRefusal(log) });
  log.info('serving', { address: grpc.address, nats: settings.natsUrl, store: store.address, checkpoint: policy.current?.manifest.id, policy_version: policy.current?.version, generator_id: g.generatorId, traces: tracing.endpoint });
  return [() => tracing.shutdown(), () => bus.close(), () => store.close(), () => policy.close(), () => worker.stop(), () => grpc.stop()];
});
