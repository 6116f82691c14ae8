import { Bus, connectBus, freePort, startNatsServer } from '@temper/bus';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunEvent, RunState, RunStatus } from '@temper/proto';
import { allStatuses, latestStatus, publishRunEvent, publishStatus, runEvents } from '../src/runs/events';
import { testNatsUrl } from '../../../test/harness/nats';

describe('run events on JetStream', () => {
  let bus: Bus;
  beforeAll(async () => {
    bus = await connectBus(testNatsUrl(), 'learner-events-test');
  });
  afterAll(async () => {
    await bus.close();
  });

  const runId = `events-${process.pid}`;
  const status = (state: RunState, step: number) =>
    RunStatus.fromPartial({ runId, name: 'demo', state, step, createdAt: new Date(1_700_000_000_000) });
  const metrics = (step: number) =>
    RunEvent.fromPartial({ runId, time: new Date(), event: { $case: 'metrics', value: { stage: 'grpo', step, values: { 'reward/total': step / 10 } } } });

  it('keeps the latest status, lists runs, and replays everything in order', async () => {
    expect(await latestStatus(bus, runId)).toBeUndefined();
    await publishStatus(bus, status(RunState.RUN_STATE_RUNNING, 0));
    await publishRunEvent(bus, metrics(1));
    await publishRunEvent(bus, metrics(2));
    await publishStatus(bus, status(RunState.RUN_STATE_SUCCEEDED, 2));

    expect((await latestStatus(bus, runId))?.state).toBe(RunState.RUN_STATE_SUCCEEDED);
    expect((await allStatuses(bus)).find((s) => s.runId === runId)?.step).toBe(2);

    const seen: string[] = [];
    const finished = (e: RunEvent) => e.event?.$case === 'status' && e.event.value.state === RunState.RUN_STATE_SUCCEEDED;
    for await (const e of runEvents(bus, runId, finished)) {
      seen.push(e.event?.$case === 'status' ? `status:${e.event.value.state}` : `metrics:${e.event?.$case === 'metrics' ? e.event.value.step : '?'}`);
    }
    expect(seen).toEqual([`status:${RunState.RUN_STATE_RUNNING}`, 'metrics:1', 'metrics:2', `status:${RunState.RUN_STATE_SUCCEEDED}`]);
  });

  it('stops following when aborted', async () => {
    const ac = new AbortController();
    const seen: RunEvent[] = [];
    const following = (async () => {
      for await (const e of runEvents(bus, `${runId}-live`, () => false, ac.signal)) {
        seen.push(e);
        ac.abort();
      }
    })();
    await publishRunEvent(bus, RunEvent.fromPartial({ runId: `${runId}-live`, event: { $case: 'log', value: 'hello' } }));
    await following;
    expect(seen).toHaveLength(1);
  });
});

describe('run events while nats-server restarts', () => {
  it('are published once it is back, each stored once', async () => {
    const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-events-restart-'));
    const port = await freePort();
    let server = await startNatsServer({ port, storeDir });
    const bus = await connectBus(server.url, 'learner-events-restart-test');
    const runId = 'restarted';
    try {
      await server.stop();
      const status = publishStatus(bus, RunStatus.fromPartial({ runId, name: 'demo', state: RunState.RUN_STATE_RUNNING, step: 3 }));
      const metrics = publishRunEvent(bus, RunEvent.fromPartial({ runId, time: new Date(), event: { $case: 'metrics', value: { stage: 'grpo', step: 3, values: { loss: 1 } } } }));
      await new Promise((r) => setTimeout(r, 2000));
      server = await startNatsServer({ port, storeDir });
      await Promise.all([status, metrics]);
      expect((await latestStatus(bus, runId))?.step).toBe(3);
      const info = await bus.jsm.streams.info('TEMPER_EVENTS', { subjects_filter: `temper.events.runs.${runId}.>` });
      expect(info.state.messages).toBe(2);
    } finally {
      await bus.close().catch(() => undefined);
      await server.stop();
      fs.rmSync(storeDir, { recursive: true, force: true });
    }
  }, 60_000);
});
