import { counter, gauge, renderMetrics, serveMetrics } from '@temper/telemetry';

describe('Prometheus metrics', () => {
  it('renders counters with labels and gauges read at scrape time', () => {
    const c = counter('test_events_total', 'Events seen.');
    c.inc({ kind: 'a' });
    c.inc({ kind: 'a' }, 2);
    c.inc({ kind: 'quote"d' });
    let level = 3;
    gauge('test_level', 'A level.', () => level);
    level = 5;
    const text = renderMetrics();
    expect(text).toContain('# TYPE test_events_total counter\ntest_events_total{kind="a"} 3\ntest_events_total{kind="quote\\"d"} 1\n');
    expect(text).toContain('# TYPE test_level gauge\ntest_level 5\n');
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
  });

  it('serves /metrics over HTTP and refuses a bad address', async () => {
    const stop = await serveMetrics('127.0.0.1:0');
    await stop();
    await expect(serveMetrics('nonsense')).rejects.toThrow(/TEMPER_METRICS_ADDR must be host:port/);
  });
});
