// The harness's nats-server, as tests see it.
export function testNatsUrl(): string {
  const url = process.env.TEMPER_TEST_NATS_URL;
  if (!url) throw new Error('TEMPER_TEST_NATS_URL is not set: run the tests through jest (test/harness/global-setup.ts)');
  return url;
}
