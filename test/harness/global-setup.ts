// Jest global setup: one real nats-server with JetStream for the whole test run, on a
// free loopback port with its store in a temporary directory. Tests read its URL from
// TEMPER_TEST_NATS_URL (see ./nats.ts); nothing assumes a fixed port.
import { startNatsServer } from '../../packages/bus/src/nats-server';

export default async function globalSetup(): Promise<void> {
  const server = await startNatsServer();
  process.env.TEMPER_TEST_NATS_URL = server.url;
  // Servers and clients a test makes in-process talk plaintext over loopback without auth,
  // as a test says explicitly here; the security tests give their own settings, and a local
  // stack its own token.
  process.env.TEMPER_PLAINTEXT = 'loopback';
  process.env.TEMPER_AUTH = 'none';
  (globalThis as { __temperNats?: typeof server }).__temperNats = server;
}
