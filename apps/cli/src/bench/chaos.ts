// npm run chaos -- [--json] [--seed N] [--steps N] [--faults N] [--every S] [--keep DIR]
// [--not-reproducible]: a small GRPO run on a local stack (two generators, two scorers) under a
// seeded schedule of faults: services SIGKILLed and restarted, a process SIGSTOPped past its ack
// timeout, nats-server restarted on its JetStream store; then what was lost, trained twice,
// redone or corrupted, and the time against the same run without faults (see chaos/run.ts).
import { chaosDefaults, runChaos } from './chaos/run';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const num = (flag: string, fallback: number) => {
    const i = args.indexOf(flag);
    if (i < 0) return fallback;
    const n = Number(args[i + 1]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: expected a number, got "${args[i + 1] ?? ''}"`);
    return n;
  };
  const keep = args.indexOf('--keep');
  const report = await runChaos({
    seed: num('--seed', chaosDefaults.seed),
    steps: num('--steps', chaosDefaults.steps),
    faults: num('--faults', chaosDefaults.faults),
    everyS: num('--every', chaosDefaults.everyS),
    reproducible: !args.includes('--not-reproducible'),
    dir: keep >= 0 ? args[keep + 1] : undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write((json ? JSON.stringify(report) : JSON.stringify(report, null, 2)) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
