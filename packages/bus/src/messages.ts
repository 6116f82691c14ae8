// Typed protobuf messages over JetStream. Publishing carries a Nats-Msg-Id so a retry is
// dropped as a duplicate; consuming acks only after the handler succeeded, so a crash
// means redelivery (at-least-once). A message that cannot be decoded, or that has been
// delivered more than maxDeliveries times (its handler failed, or its consumer died, each
// time), is parked on the dead-letter subject with the reason rather than redelivered
// forever. The active trace context rides along in the headers, and the handler runs inside
// the context it arrived with.
import { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, MsgHdrs } from '@nats-io/transport-node';
import { Context, context } from '@opentelemetry/api';
import { contextFromHeaders, counter, traceHeaders } from '@temper/telemetry';
import { DEFAULT_MAX_DELIVERIES, parkMessage } from './dead-letters';
import { streams } from './streams';

/** What ts-proto generates for every message. */
export interface MessageType<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

export interface PublishOptions {
  /** Idempotency key: the same id within the stream's duplicate window is stored once. */
  msgId?: string;
  /** Extra headers (the active trace context is added by itself). */
  headers?: Record<string, string>;
}

export async function publishMessage<T>(
  js: JetStreamClient,
  subject: string,
  type: MessageType<T>,
  message: T,
  opts: PublishOptions = {},
): Promise<{ seq: number; duplicate: boolean }> {
  return publishEncoded(js, subject, type.encode(message).finish(), opts);
}

/** publishMessage for a message already encoded. */
export async function publishEncoded(js: JetStreamClient, subject: string, bytes: Uint8Array, opts: PublishOptions = {}): Promise<{ seq: number; duplicate: boolean }> {
  let hdrs: MsgHdrs | undefined;
  const all = { ...traceHeaders(), ...opts.headers };
  if (Object.keys(all).length > 0) {
    hdrs = natsHeaders();
    for (const [k, v] of Object.entries(all)) hdrs.set(k, v);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const ack = await js.publish(subject, bytes, { msgID: opts.msgId, headers: hdrs });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      // With a message id a retry cannot store the message twice, so a publish rides out a
      // nats-server that is restarting (no answer, or JetStream not enabled yet while it
      // recovers its store): the chaos run failed a run on "jetstream is not enabled".
      if (!opts.msgId || !transient(err) || attempt >= PUBLISH_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

/** Tries of a publish with a message id after a transient failure: about 60 s in all. */
export const PUBLISH_RETRIES = 35;

/** Failures of a server that is away or starting, as opposed to a refused message or a closed connection. */
function transient(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  if (/connection closed|closed connection/i.test(message)) return false;
  return (err instanceof Error && err.name === 'TimeoutError') || /timeout|jetstream is not enabled|no responders|503|disconnect|reconnect/i.test(message);
}

/** The last message on `subject` of TEMPER_EVENTS, decoded; undefined when there is none (or NATS cannot say). */
export async function lastEvent<T>(jsm: JetStreamManager, subject: string, type: MessageType<T>): Promise<T | undefined> {
  const msg = await jsm.streams.getMessage(streams.events.name, { last_by_subj: subject }).catch(() => undefined);
  return msg ? type.decode(msg.data) : undefined;
}

const consumed = counter('temper_jetstream_messages_total', 'JetStream messages handled, by stream, consumer and outcome.');

export interface Delivery<T> {
  message: T;
  subject: string;
  headers: Record<string, string>;
  /** The trace context the publisher was in (the handler already runs inside it). */
  context: Context;
  /** How many times JetStream has delivered this message (1 the first time). */
  deliveryCount: number;
  raw: JsMsg;
}

export interface ConsumeOptions {
  stream: string;
  /** Durable consumer name; consumers with the same name share the work. */
  consumer: string;
  /** Called with decode failures and handler errors. */
  onError?: (err: unknown, msg: JsMsg) => void;
  /** Delay before a failed message is redelivered. */
  retryDelayMs?: number;
  /** The handler acks (via Delivery.raw) when it is really done, e.g. after a training step. */
  manualAck?: boolean;
  /**
   * Deliveries before a message is parked on the dead-letter subject (default 10): a failure
   * on the last one parks it, and a delivery past it (its consumer died on each) is parked
   * unhandled. The consumer's max_deliver should be above it (or unbounded).
   */
  maxDeliveries?: number;
}

/**
 * Pulls from a durable consumer until the returned stop() is called. The handler's
 * success acks the message (unless manualAck); its failure naks it for redelivery after
 * retryDelayMs.
 */
export async function consumeMessages<T>(
  js: JetStreamClient,
  type: MessageType<T>,
  opts: ConsumeOptions,
  handler: (d: Delivery<T>) => Promise<void>,
): Promise<{ stop(): Promise<void>; done: Promise<void> }> {
  const consumer = await js.consumers.get(opts.stream, opts.consumer);
  const messages = await consumer.consume();
  const maxDeliveries = opts.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
  const park = (m: JsMsg, reason: string, outcome: string) => {
    consumed.inc({ stream: opts.stream, consumer: opts.consumer, outcome });
    return parkMessage(js, m, opts.consumer, reason);
  };
  const done = (async () => {
    for await (const m of messages) {
      if (m.info.deliveryCount > maxDeliveries) {
        await park(m, `delivered ${m.info.deliveryCount} times without being handled (its consumer failed or died on it each time)`, 'parked');
        continue;
      }
      let message: T;
      try {
        message = type.decode(m.data);
      } catch (err) {
        opts.onError?.(err, m);
        await park(m, `undecodable: ${err instanceof Error ? err.message : String(err)}`, 'undecodable');
        continue;
      }
      try {
        const headers = headerRecord(m.headers);
        const ctx = contextFromHeaders(headers);
        await context.with(ctx, () =>
          handler({
            message,
            subject: m.subject,
            headers,
            context: ctx,
            // Read from the reply subject only when asked: parsing it for every message costs.
            get deliveryCount() {
              return m.info.deliveryCount;
            },
            raw: m,
          }),
        );
        if (!opts.manualAck) m.ack();
        consumed.inc({ stream: opts.stream, consumer: opts.consumer, outcome: 'handled' });
      } catch (err) {
        opts.onError?.(err, m);
        if (m.info.deliveryCount >= maxDeliveries) {
          await park(m, `failed on each of ${m.info.deliveryCount} deliveries, the last with: ${err instanceof Error ? err.message : String(err)}`, 'parked');
          continue;
        }
        m.nak(opts.retryDelayMs ?? 1000);
        consumed.inc({ stream: opts.stream, consumer: opts.consumer, outcome: 'failed' });
      }
    }
  })();
  return {
    stop: async () => {
      await messages.close();
      await done;
    },
    done,
  };
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}
