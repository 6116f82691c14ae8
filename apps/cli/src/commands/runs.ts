// temper runs [--endpoint] [--json]: the learner's runs.  temper cancel <run-id>: stop one.
import { LearnerClient, learnerAddress, stateName } from '../learner-client';

export async function runs(args: { endpoint?: string; json: boolean }): Promise<number> {
  const client = new LearnerClient(learnerAddress(args.endpoint));
  try {
    const { runs } = await client.listRuns();
    if (args.json) {
      process.stdout.write(JSON.stringify(runs.map((r) => ({ run_id: r.runId, name: r.name, state: stateName(r.state), stage: r.stage, step: r.step, total_steps: r.totalSteps }))) + '\n');
      return 0;
    }
    if (runs.length === 0) process.stdout.write('no runs\n');
    for (const r of runs) {
      process.stdout.write(`${r.runId.padEnd(32)} ${stateName(r.state).padEnd(10)} ${r.stage} ${r.step}/${r.totalSteps}${r.error ? `  ${r.error}` : ''}\n`);
    }
    return 0;
  } finally {
    client.close();
  }
}

export async function cancel(args: { runId: string; endpoint?: string }): Promise<number> {
  if (!args.runId) throw new Error('usage: temper cancel <run-id>');
  const client = new LearnerClient(learnerAddress(args.endpoint));
  try {
    const { run } = await client.cancelRun(args.runId);
    process.stdout.write(`${run!.runId} ${stateName(run!.state)}\n`);
    return 0;
  } finally {
    client.close();
  }
}
