// Poison messages: a message a consumer cannot use (undecodable, invalid, or failing every
// time it is handled) is parked on a dead-letter subject with the reason, where an operator
// can read it, and taken off its work queue, so it is never retried forever and never
// dropped unseen. The parked copy keeps the original bytes and headers.
//
//   temper.dead.<stream>.<consumer>   headers Temper-Dead-Reason, -Stream, -Subject,
//                                     -Consumer, -Deliveries, -Sequence
import { JetStreamClient, JsMsg, RetentionPolicy } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { counter } from '@temper/telemetry';
import type { StreamSpec } from './streams';

/** Where parked messages are kept (two weeks), by stream and consumer. */
export const deadLetterStream: StreamSpec & { maxAgeS: number } = {
  name: 'TEMPER_DEAD_LETTERS',
  subjects: ['temper.dead.>'],
  retention: RetentionPolicy.Limits,
  duplicateWindowS: 600,
  maxAgeS: 14 * 24 * 3600,
};

/** Deliveries a message gets before it is parked, unless a consumer says otherwise. */
export const DEFAULT_MAX_DELIVERIES = 10;

export const deadLetterSubject = (stream: string, consumer: string) => `temper.dead.${safe(stream)}.${safe(consumer)}`;

/** Every consumer's dead-letter subject of `stream`. */
export const deadLetterSubjectsOf = (stream: string) => `temper.dead.${safe(stream)}.*`;

const safe = (s: string) => s.replace(/[.*>\s]/g, '_') || '_';

const parked = counter('temper_dead_letters_total', 'Messages parked on a dead-letter subject, by stream and consumer.');

export interface ParkedMessage {
  reason: string;
  stream: string;
  subject: string;
  consumer: string;
  deliveries: number;
  sequence: number;
  data: Uint8Array;
}

/**
 * Parks `msg` on its dead-letter subject with `reason`, then terminates it (a work queue
 * drops it). The parked copy is stored once per stream sequence even when parking is retried.
 * When the park itself fails the message is nakked instead: it comes back, and is parked then.
 */
export async function parkMessage(js: JetStreamClient, msg: JsMsg, consumer: string, reason: string): Promise<void> {
  const h = natsHeaders();
  if (msg.headers) for (const k of msg.headers.keys()) if (!k.startsWith('Nats-')) h.set(k, msg.headers.get(k));
  const oneLine = reason.replace(/[\r\n]+/g, ' ').slice(0, 1000);
  h.set('Temper-Dead-Reason', oneLine);
  h.set('Temper-Dead-Stream', msg.info.stream);
  h.set('Temper-Dead-Subject', msg.subject);
  h.set('Temper-Dead-Consumer', consumer);
  h.set('Temper-Dead-Deliveries', String(msg.info.deliveryCount));
  h.set('Temper-Dead-Sequence', String(msg.info.streamSequence));
  try {
    await js.publish(deadLetterSubject(msg.info.stream, consumer), msg.data, { headers: h, msgID: `dead/${msg.info.stream}/${msg.info.streamSequence}` });
  } catch {
    msg.nak(1000);
    return;
  }
  // No reason text on the TERM: servers before 2.10 ignore a +TERM that carries one.
  msg.term();
  parked.inc({ stream: msg.info.stream, consumer });
}

/**
 * The messages parked by one consumer of `stream`, oldest first: up to `max`, waiting up to
 * `waitMs` for that many to be there.
 */
export async function readParked(js: JetStreamClient, stream: string, consumer: string, max: number, waitMs = 5000): Promise<ParkedMessage[]> {
  const reader = await js.consumers.get(deadLetterStream.name, { filter_subjects: deadLetterSubject(stream, consumer) });
  const out: ParkedMessage[] = [];
  const batch = await reader.fetch({ max_messages: max, expires: waitMs });
  for await (const m of batch) {
    out.push(parkedMessage(m.data, (k) => m.headers?.get(k) ?? ''));
    if (out.length === max) break;
  }
  return out;
}

/** Reads a parked message (as the dead-letter stream holds it). */
export function parkedMessage(data: Uint8Array, header: (key: string) => string): ParkedMessage {
  return {
    reason: header('Temper-Dead-Reason'),
    stream: header('Temper-Dead-Stream'),
    subject: header('Temper-Dead-Subject'),
    consumer: header('Temper-Dead-Consumer'),
    deliveries: Number(header('Temper-Dead-Deliveries')),
    sequence: Number(header('Temper-Dead-Sequence')),
    data,
  };
}
