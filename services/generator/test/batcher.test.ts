// How long a partial batch waits for more groups: PendingQueue.linger on its own.
import { groupSeed, PendingQueue, reproducibleSeed, sleep } from '../src/batcher';

async function timed(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

describe('PendingQueue.linger', () => {
  it('stops waiting at once when the batch is full', async () => {
    const q = new PendingQueue<number>();
    [1, 2, 3].forEach((g) => q.push(g));
    expect(await timed(() => q.linger({ maxMs: 1000, quietMs: 500, count: 3, more: () => true }))).toBeLessThan(100);
  });

  it('stops after a quiet spell when nothing more is pending upstream', async () => {
    const q = new PendingQueue<number>();
    q.push(1);
    const arrivals = (async () => {
      await sleep(30);
      q.push(2); // restarts the quiet spell
    })();
    const ms = await timed(() => q.linger({ maxMs: 2000, quietMs: 100, count: 8, more: () => false }));
    await arrivals;
    expect(q.length).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(125);
    expect(ms).toBeLessThan(1000);
  });

  it('waits up to maxMs while more is pending upstream', async () => {
    const q = new PendingQueue<number>();
    q.push(1);
    const ms = await timed(() => q.linger({ maxMs: 300, quietMs: 10, count: 8, more: () => true }));
    expect(ms).toBeGreaterThanOrEqual(295);
  });
});

describe('seeds', () => {
  const key = (runId: string, attempt: number) => ({ runId, step: 3, groupIndex: 1, attempt });
  it("a reproducible group's seed is its step, group and seed alone: not its run or attempt", () => {
    expect(reproducibleSeed(key('run-a', 0), 7)).toBe(reproducibleSeed(key('run-b', 2), 7));
    expect(reproducibleSeed(key('run-a', 0), 7)).not.toBe(reproducibleSeed({ ...key('run-a', 0), groupIndex: 2 }, 7));
    expect(reproducibleSeed(key('run-a', 0), 7)).not.toBe(reproducibleSeed({ ...key('run-a', 0), step: 4 }, 7));
    expect(reproducibleSeed(key('run-a', 0), 7)).not.toBe(reproducibleSeed(key('run-a', 0), 8));
    // Other groups are seeded per run and attempt.
    expect(groupSeed(key('run-a', 0), 7)).not.toBe(groupSeed(key('run-b', 0), 7));
  });
});
