// @temper/checkpoint-store: the store's server side (backends, uploads, GC, retention, the
// gRPC handlers), for its entry point, its bench and tests that run a real store. Clients
// use @temper/checkpoint-client.
export * from './backends/backend';
export * from './backends/fs';
export * from './backends/object-store';
export * from './errors';
export * from './events';
export * from './flow-control';
export * from './grpc';
export * from './lineage';
export * from './manifest';
export * from './names';
export * from './open';
export * from './retention';
export * from './settings';
export * from './store';
export * from './uploads';
