// One trace per GRPO step. A step's span begins when its first rollout requests go out, and
// for a step asked for ahead that is while the step before it still trains: the generators
// and scorers trace their work on it from the requests' headers, so it lands in its own
// step's trace, not in the one that happened to be running when the requests were sent.
import { Context, context, Span, trace, Tracer } from '@opentelemetry/api';
import { SpanKind, withSpan } from '@temper/telemetry';

export class StepTraces {
  private readonly spans = new Map<number, Span>();

  constructor(
    private readonly tracer: Tracer,
    private readonly runId: string,
    private readonly parent: Context = context.active(),
  ) {}

  /** Runs `work` (e.g. sending the step's requests) inside the step's span, starting the span if needed. */
  within<T>(step: number, work: () => Promise<T>): Promise<T> {
    return context.with(trace.setSpan(this.parent, this.span(step)), work);
  }

  /** Runs the step itself in its span (requests it sends go out in the same span), which ends with it. */
  async run<T>(step: number, work: () => Promise<T>): Promise<T> {
    try {
      return await withSpan(this.tracer, 'grpo.step', { parent: this.parent, started: this.span(step) }, work);
    } finally {
      this.spans.delete(step);
    }
  }

  /** Ends the spans of steps asked for but never run (a stage that stopped early). */
  endAll(): void {
    for (const span of this.spans.values()) span.end();
    this.spans.clear();
  }

  private span(step: number): Span {
    let span = this.spans.get(step);
    if (!span) {
      span = this.tracer.startSpan('grpo.step', { kind: SpanKind.INTERNAL, attributes: { 'temper.run_id': this.runId, 'temper.step': step } }, this.parent);
      this.spans.set(step, span);
    }
    return span;
  }
}
