export * from './propagation';
export * from './spans';
export * from './tracing';
export * from './metrics';
