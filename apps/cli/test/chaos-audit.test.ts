// The chaos run's pure parts: its seeded schedule, and the audit that counts groups lost and
// trained twice against the fault-free run.
import { auditTraining, TrainedStep } from '../src/bench/chaos/audit';
import { faultSchedule, ScheduleOptions } from '../src/bench/chaos/schedule';

const options: ScheduleOptions = { seed: 5, count: 10, everyS: 2, natsRestarts: 1, pauses: 1, pauseS: 6, replicas: { 'checkpoint-store': 1, scorer: 2, generator: 2, learner: 1 } };

describe('the chaos schedule', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(faultSchedule(options)).toEqual(faultSchedule(options));
    expect(faultSchedule({ ...options, seed: 6 })).not.toEqual(faultSchedule(options));
  });

  it('holds the restarts and pauses asked for, kills every service twice in 8 kills, at rising times', () => {
    const s = faultSchedule(options);
    expect(s.filter((f) => f.kind === 'nats-restart')).toHaveLength(1);
    const pauses = s.filter((f) => f.kind === 'pause');
    expect(pauses).toHaveLength(1);
    for (const p of pauses) expect(['generator', 'scorer']).toContain(p.service);
    const killed = new Map<string, number>();
    for (const f of s) if (f.kind === 'kill') killed.set(f.service, (killed.get(f.service) ?? 0) + 1);
    expect(Object.fromEntries(killed)).toEqual({ 'checkpoint-store': 2, scorer: 2, generator: 2, learner: 2 });
    for (let i = 1; i < s.length; i++) expect(s[i].atS).toBeGreaterThan(s[i - 1].atS);
    for (const f of s) if (f.kind !== 'nats-restart') expect(f.replica).toBeLessThan(options.replicas[f.service]);
  });

  it('refuses more special faults than faults', () => {
    expect(() => faultSchedule({ ...options, count: 1 })).toThrow(/cannot hold 1 NATS restarts and 1 pauses/);
  });
});

describe('the chaos audit', () => {
  const step = (n: number, prompts: string[], groups = prompts.map((_, i) => `${i}/0`), attempt = 0): TrainedStep => ({ step: n, attempt, groups, prompts });
  const calm = [step(1, ['a', 'b']), step(2, ['c', 'd']), step(3, ['e', 'f'])];

  it('finds nothing wrong in the same steps, and counts a step redone after a resume once', () => {
    const redone = [step(1, ['a', 'b']), step(2, ['c', 'd']), step(2, ['c', 'd'], undefined, 1), step(3, ['e', 'f'], undefined, 1)];
    expect(auditTraining(redone, calm, 3)).toEqual({ stepsTrained: 4, stepsRedone: 1, stepsMissing: 0, groupsLost: 0, groupsDuplicated: 0 });
  });

  it('counts a prompt missing from a step as lost and one trained twice as duplicated', () => {
    // Step 2 trains on c twice and never on d: a data position replayed.
    const wrong = [step(1, ['a', 'b']), step(2, ['c', 'c']), step(3, ['e', 'f'])];
    expect(auditTraining(wrong, calm, 3)).toMatchObject({ groupsLost: 1, groupsDuplicated: 1 });
    // The same group key twice in one step.
    const twice = [step(1, ['a', 'b'], ['0/0', '0/0']), step(2, ['c', 'd']), step(3, ['e', 'f'])];
    expect(auditTraining(twice, calm, 3)).toMatchObject({ groupsLost: 0, groupsDuplicated: 1 });
  });

  it('counts the groups of a step never trained as lost', () => {
    expect(auditTraining([step(1, ['a', 'b']), step(2, ['c', 'd'])], calm, 3)).toMatchObject({ stepsMissing: 1, groupsLost: 2 });
  });
});
