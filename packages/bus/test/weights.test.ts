// Policy weights over core NATS: chunked under max_payload, reassembled whole, and a version
// with a chunk missing dropped rather than delivered half.
import { Bus, connectBus, publishWeights, StreamedWeights, subjects, subscribeWeights } from '@temper/bus';
import { headers } from '@nats-io/transport-node';
import { createHash, randomBytes } from 'node:crypto';
import { testNatsUrl } from '../../../test/harness/nats';

describe('streamed policy weights', () => {
  let bus: Bus;
  const runId = `weights-test-${process.pid}`;
  beforeAll(async () => {
    bus = await connectBus(testNatsUrl(), 'weights-test');
  });
  afterAll(async () => {
    await bus.close();
  });

  async function received(send: () => Promise<void>, count: number): Promise<StreamedWeights[]> {
    const got: StreamedWeights[] = [];
    const sub = subscribeWeights(bus.nc, runId, (w) => got.push(w));
    await bus.nc.flush(); // the subscription is in place before anything is sent
    await send();
    const deadline = Date.now() + 5000;
    while (got.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // and nothing more comes
    await sub.stop();
    return got;
  }

  it('delivers a version larger than max_payload whole, in order with the next one, with its kind', async () => {
    const big = randomBytes(Math.floor(bus.nc.info!.max_payload * 2.5));
    const small = randomBytes(1000);
    const got = await received(async () => {
      await publishWeights(bus.nc, runId, 7, big);
      await publishWeights(bus.nc, runId, 8, small, undefined, 'adapters');
    }, 2);
    expect(got.map((w) => w.version)).toEqual([7, 8]);
    // What the bytes are travels with them: all the weights, or adapters alone.
    expect(got.map((w) => w.kind)).toEqual(['model', 'adapters']);
    expect(Buffer.from(got[0].bytes).equals(big)).toBe(true);
    expect(got[0].sha256).toBe(createHash('sha256').update(big).digest('hex'));
    expect(Buffer.from(got[1].bytes).equals(small)).toBe(true);
  });

  it('drops a version with a chunk missing', async () => {
    const good = randomBytes(3000);
    const got = await received(async () => {
      const h = headers();
      h.set('Temper-Policy-Version', '9');
      h.set('Temper-Chunk', '1/2'); // chunk 0 never came
      h.set('Temper-Bytes', '2000');
      bus.nc.publish(subjects.policyWeights(runId), new Uint8Array(1000), { headers: h });
      await publishWeights(bus.nc, runId, 10, good);
    }, 1);
    expect(got.map((w) => w.version)).toEqual([10]);
    expect(Buffer.from(got[0].bytes).equals(good)).toBe(true);
  });

  it('drops a version whose bytes do not hash to what the sender said', async () => {
    const good = randomBytes(2000);
    const got = await received(async () => {
      await publishWeights(bus.nc, runId, 11, randomBytes(2000), createHash('sha256').update(good).digest('hex'));
      await publishWeights(bus.nc, runId, 12, good);
    }, 1);
    expect(got.map((w) => w.version)).toEqual([12]);
  });
});
