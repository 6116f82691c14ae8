import type { NatsServer } from '../../packages/bus/src/nats-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { __temperNats?: NatsServer }).__temperNats;
  if (server) await server.stop();
}
