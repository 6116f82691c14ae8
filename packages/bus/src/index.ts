export * from './connect';
export * from './messages';
export * from './nats-server';
export * from './streams';
export * from './weights';
