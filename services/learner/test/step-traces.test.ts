// One trace per GRPO step: a step's requests, sent before the step runs (asked for ahead) or
// while it runs, are in the step's own span, and each step makes exactly one span.
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { StepTraces } from '../src/grpo/step-traces';

describe('step traces', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register(); // the context manager that carries the active span across awaits
  const tracer = provider.getTracer('test');
  afterAll(() => provider.shutdown());
  const activeSpanId = async () => trace.getActiveSpan()?.spanContext().spanId;

  it('keeps a step\'s requests in its span, sent ahead or during the step', async () => {
    const traces = new StepTraces(tracer, 'run-1');
    const ahead = await traces.within(2, activeSpanId);
    const seen = await traces.run(1, async () => ({ during: await traces.within(1, activeSpanId), step: await activeSpanId() }));
    const second = await traces.run(2, activeSpanId);
    traces.endAll();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => [s.name, s.attributes['temper.step']])).toEqual([['grpo.step', 1], ['grpo.step', 2]]);
    expect(seen.during).toBe(seen.step);
    expect(seen.step).toBe(spans[0].spanContext().spanId);
    expect(ahead).toBe(second);
    expect(second).toBe(spans[1].spanContext().spanId);
    expect(spans[0].spanContext().traceId).not.toBe(spans[1].spanContext().traceId);
  });

  it('ends the span of a step asked for but never run', async () => {
    exporter.reset();
    const traces = new StepTraces(tracer, 'run-2');
    await traces.within(5, activeSpanId);
    expect(exporter.getFinishedSpans()).toEqual([]);
    traces.endAll();
    expect(exporter.getFinishedSpans().map((s) => s.attributes['temper.step'])).toEqual([5]);
  });
});
