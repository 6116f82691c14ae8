export * from './connect';
export * from './dead-letters';
export * from './messages';
export * from './nats-server';
export * from './permissions';
export * from './streams';
export * from './weights';
