// @temper/checkpoint-client: what talks to the checkpoint store (the client, manifests, the
// wire both ends share). The store itself is services/checkpoint-store.
export * from './client';
export * from './files';
export * from './hash-worker';
export * from './manifest';
export * from './wire';
export * from './policy-dir';
