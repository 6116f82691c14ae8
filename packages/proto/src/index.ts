// Temper's contracts, generated from proto/temper/v1 by ts-proto (npm run gen).
// The same messages travel over gRPC and NATS JetStream.
import * as path from 'node:path';

export * from './gen/temper/v1/common';
export * from './gen/temper/v1/reward';
export * from './gen/temper/v1/environment';
export * from './gen/temper/v1/rollout';
export * from './gen/temper/v1/checkpoint';
export * from './gen/temper/v1/run';
export * from './gen/temper/v1/generator';
export * from './gen/temper/v1/scorer';
export * from './gen/temper/v1/learner';
export * from './gen/temper/v1/checkpoint_store';

/** The binary FileDescriptorSet of proto/ (buf build), for gRPC server reflection. */
export const descriptorSetPath = path.join(__dirname, '..', 'descriptor', 'temper.binpb');

/** Fully qualified service names, as health checks and reflection report them. */
export const serviceNames = {
  generator: 'temper.v1.RolloutGenerator',
  scorer: 'temper.v1.RewardScorer',
  learner: 'temper.v1.PolicyLearner',
  checkpointStore: 'temper.v1.CheckpointStore',
} as const;
export * from './strict-json';
/** The wire writer the generated encoders take, for messages assembled from encoded parts. */
export { BinaryWriter } from '@bufbuild/protobuf/wire';
