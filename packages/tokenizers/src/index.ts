export * from './types';
export * from './chat-template';
export * from './generation-config';
export * from './byte-tokenizer';
export * from './huggingface';
export * from './load';
export * from './model-dir';
