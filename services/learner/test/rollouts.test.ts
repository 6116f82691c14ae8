// The learner's side of the rollout exchange on a private nats-server: a stage that stops early
// takes back the requests it had asked for ahead (nobody will make the version they wait
// for), and only its own run's.
import { Bus, connectBus, NatsServer, startNatsServer, streams, subjects } from '@temper/bus';
import { RolloutRequest } from '@temper/proto';
import { createLogger } from '@temper/service';
import { RolloutExchange } from '../src/rollouts';

describe('rollout exchange', () => {
  let nats: NatsServer;
  let bus: Bus;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus(nats.url, 'rollouts-test');
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  const queued = async (runId: string) =>
    (await bus.jsm.streams.info(streams.rolloutRequests.name, { subjects_filter: subjects.rolloutRequest(runId) })).state.subjects?.[subjects.rolloutRequest(runId)] ?? 0;
  const requests = (runId: string, step: number, minPolicyVersion: number) =>
    [0, 1, 2].map((groupIndex) => RolloutRequest.fromPartial({ key: { runId, step, groupIndex, attempt: 0 }, prompt: { text: 'Q', tokenIds: [1] }, minPolicyVersion }));

  it('withdraws the requests of its run that no generator has taken, and no other run\'s', async () => {
    const mine = new RolloutExchange(bus, 'run-stops', 0, createLogger('test'));
    const other = new RolloutExchange(bus, 'run-goes-on', 0, createLogger('test'));
    await mine.request(requests('run-stops', 2, 2));
    await other.request(requests('run-goes-on', 5, 5));
    expect(await queued('run-stops')).toBe(3);
    await mine.withdrawRequests();
    expect(await queued('run-stops')).toBe(0);
    expect(await queued('run-goes-on')).toBe(3);
  });
});
