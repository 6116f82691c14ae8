export * from './types';
export * from './calculator';
export * from './tool-calls';
export * from './tools';
export * from './options';
export * from './builtin';
export * from './conversation';
export * from './registry';
