// The chaos run's short schedule (npm run chaos runs the long one): a small reproducible GRPO
// run on a local stack with two generators and two scorers, each service killed by pid and
// restarted, a generator or scorer paused past its ack timeout, nats-server restarted on its
// JetStream store; then the same run without faults to compare with. Nothing may be lost,
// trained twice or corrupted, and the final weights must be the fault-free run's, byte for byte.
import { runChaos } from '../apps/cli/src/bench/chaos/run';

describe('the chaos run', () => {
  it('survives kills of every service, a pause and a NATS restart with nothing lost, duplicated or corrupt, and the same final weights', async () => {
    const report = await runChaos({ seed: 3, steps: 150, faults: 8, everyS: 1, natsRestarts: 1, pauses: 1, ackWaitS: 3, reproducible: true });
    const context = JSON.stringify(report); // all of it, when an assertion fails
    expect({ context, completed: report.completed, error: report.error }).toEqual({ context, completed: true, error: '' });
    expect(report.fault_free_completed).toBe(true);
    // Every scheduled fault happened before the run ended: each service killed at least once.
    const injected = report.faults_injected;
    expect(Object.values(injected).reduce((a, b) => a + b, 0)).toBe(report.faults_scheduled);
    for (const service of ['learner', 'generator', 'scorer', 'checkpoint_store']) expect(injected[`kill_${service}`]).toBeGreaterThanOrEqual(1);
    expect(injected.nats_restart).toBe(1);
    expect((injected.pause_generator ?? 0) + (injected.pause_scorer ?? 0)).toBe(1);

    expect(report.steps_missing).toBe(0);
    expect(report.groups_lost).toBe(0);
    expect(report.groups_duplicated).toBe(0);
    expect(report.checkpoints_corrupt).toBe(0);
    expect(report.checkpoints_missing_from_lineage).toBe(0);
    // Training moved the weights, and the faults changed none of it.
    expect(report.weights_changed).toBe(true);
    expect(report.final_weights_sha256.chaos).toBe(report.final_weights_sha256.fault_free);
  }, 360_000);
});
