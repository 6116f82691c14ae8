// A nats-server restarted on its JetStream store (as the chaos run does): the streams are
// still there, and a publish with a message id made while the server was away waits for it
// and is stored once.
import { connectBus, freePort, publishMessage, startNatsServer, streams, subjects } from '@temper/bus';
import { RolloutRequest } from '@temper/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

describe('a nats-server restarted on its store', () => {
  it('keeps the streams, and a publish made while it was away is stored once when it is back', async () => {
    const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-nats-restart-'));
    const port = await freePort();
    let server = await startNatsServer({ port, storeDir });
    const bus = await connectBus(server.url, 'restart-test');
    try {
      const runId = 'restart-test';
      const request = (groupIndex: number) => RolloutRequest.fromPartial({ key: { runId, step: 1, groupIndex } });
      await publishMessage(bus.js, subjects.rolloutRequest(runId), RolloutRequest, request(0), { msgId: 'restart-0' });

      await server.stop();
      const published = publishMessage(bus.js, subjects.rolloutRequest(runId), RolloutRequest, request(1), { msgId: 'restart-1' });
      await new Promise((r) => setTimeout(r, 2000));
      server = await startNatsServer({ port, storeDir });
      const ack = await published;
      expect(ack.duplicate).toBe(false);

      const info = await bus.jsm.streams.info(streams.rolloutRequests.name);
      expect(info.state.messages).toBe(2); // the one from before the restart, and the one during it
    } finally {
      await bus.close().catch(() => undefined);
      await server.stop();
      fs.rmSync(storeDir, { recursive: true, force: true });
    }
  }, 60_000);
});
