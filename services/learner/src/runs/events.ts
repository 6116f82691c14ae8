// A run lives in the TEMPER_EVENTS stream: its status snapshots on one subject (the last is
// the current state, so a restarted learner and every replica agree on it) and its metrics,
// checkpoints and log lines on another. WatchRun replays both in order and follows them live.
import { DeliverPolicy } from '@nats-io/jetstream';
import { Bus, publishMessage, streams, subjects } from '@temper/bus';
import { RunEvent, RunStatus } from '@temper/proto';
import { randomUUID } from 'node:crypto';

// Each event carries an id of its own, so the publish retries while nats-server is away or
// starting (see publishEncoded) and is still stored once: without one, the chaos run's NATS
// restart failed a run on its step's metrics ("jetstream is not enabled").
export async function publishStatus(bus: Bus, status: RunStatus): Promise<void> {
  const event = RunEvent.fromPartial({ runId: status.runId, time: new Date(), event: { $case: 'status', value: status } });
  await publishMessage(bus.js, subjects.runStatus(status.runId), RunEvent, event, { msgId: randomUUID() });
}

export async function publishRunEvent(bus: Bus, event: RunEvent): Promise<void> {
  await publishMessage(bus.js, subjects.runLog(event.runId), RunEvent, event, { msgId: randomUUID() });
}

/** The run's current status, or undefined when no such run exists. */
export async function latestStatus(bus: Bus, runId: string): Promise<RunStatus | undefined> {
  const msg = await bus.jsm.streams.getMessage(streams.events.name, { last_by_subj: subjects.runStatus(runId) }).catch((err) => {
    if (/no message found/i.test(String(err))) return undefined;
    throw err;
  });
  if (!msg) return undefined;
  const event = RunEvent.decode(msg.data);
  return event.event?.$case === 'status' ? event.event.value : undefined;
}

/** Every run's current status, newest first. */
export async function allStatuses(bus: Bus): Promise<RunStatus[]> {
  const info = await bus.jsm.streams.info(streams.events.name, { subjects_filter: subjects.allRunStatuses });
  const runSubjects = Object.keys(info.state.subjects ?? {});
  const statuses = await Promise.all(
    runSubjects.map(async (subject) => {
      const msg = await bus.jsm.streams.getMessage(streams.events.name, { last_by_subj: subject });
      const event = RunEvent.decode(msg!.data);
      return event.event?.$case === 'status' ? event.event.value : undefined;
    }),
  );
  return statuses
    .filter((s): s is RunStatus => s !== undefined)
    .sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
}

/**
 * The run's events in order, from the first, until `until(event)` says the run is over or
 * `signal` aborts. An ordered consumer: nothing to ack, nothing left behind on the server.
 */
export async function* runEvents(bus: Bus, runId: string, until: (e: RunEvent) => boolean, signal?: AbortSignal): AsyncGenerator<RunEvent> {
  const consumer = await bus.js.consumers.get(streams.events.name, {
    filter_subjects: subjects.runAll(runId), // one subject: nats-server 2.9 has no multi-filter consumers
    deliver_policy: DeliverPolicy.All,
  });
  const messages = await consumer.consume();
  const abort = () => void messages.close();
  if (signal?.aborted) abort();
  signal?.addEventListener('abort', abort);
  try {
    for await (const m of messages) {
      const event = RunEvent.decode(m.data);
      yield event;
      if (until(event)) break;
    }
  } finally {
    signal?.removeEventListener('abort', abort);
    await messages.close();
  }
}
