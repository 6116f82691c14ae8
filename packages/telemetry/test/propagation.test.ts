// A span in one process, its child in another: the trace context crosses as headers (as it
// does in gRPC metadata and NATS headers) and both spans reach an OTLP endpoint in one trace.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { tracesEndpoint } from '@temper/telemetry';
import { OtlpReceiver, startOtlpReceiver } from '../../../test/harness/otlp-receiver';

// Services export from their own processes (the OTLP exporter loads node:http with a dynamic
// import that Jest's sandbox does not allow), so the spans here come from real processes.
async function spanProcess(endpoint: string, service: string, span: string, headers?: Record<string, string>) {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(__dirname, 'span-process.js')], {
    env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, SERVICE_NAME: service, SPAN_NAME: span, TRACE_HEADERS: headers ? JSON.stringify(headers) : '' },
  });
  expect(stderr).toBe('');
  return JSON.parse(stdout) as Record<string, string>;
}

describe('tracing across processes', () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  it('joins a span of another process to the trace through headers', async () => {
    const learnerHeaders = await spanProcess(receiver.endpoint, 'learner', 'grpo.step');
    expect(learnerHeaders.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await spanProcess(receiver.endpoint, 'generator', 'generate', learnerHeaders);
    const spans = await receiver.waitFor((s) => s.length >= 2);
    const step = spans.find((s) => s.name === 'grpo.step')!;
    const gen = spans.find((s) => s.name === 'generate')!;
    expect(step.service).toBe('learner');
    expect(gen.service).toBe('generator');
    expect(gen.traceId).toBe(step.traceId);
    expect(gen.parentSpanId).toBe(step.spanId);
    expect(step.attributes['temper.step']).toBe(3);
  });

  it('reads the endpoint from the standard variables', () => {
    expect(tracesEndpoint({})).toBeNull();
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toBe('http://c:4318/v1/traces');
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/x' })).toBe('http://c:4318/x');
  });
});
