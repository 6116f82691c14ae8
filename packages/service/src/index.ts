export * from './checkpoint-files';
export * from './gc';
export * from './grpc-server';
export * from './health-client';
export * from './lifecycle';
export * from './log';
export * from './ports';
export * from './grpc-trace';
