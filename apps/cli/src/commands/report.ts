// temper report <run-id> [--endpoint host:port] [--out report.html] [--json]: a finished run's
// HTML report rebuilt from what the learner keeps of it (its status and every step's metrics
// stay in the TEMPER_EVENTS stream on NATS), the same report `temper run --report` writes.
import { RunState } from '@temper/proto';
import * as fs from 'node:fs';
import { LearnerClient, learnerAddress, stateName } from '../learner-client';
import { renderReport } from '../report/html';
import { follow } from './run';

export interface ReportArgs {
  runId: string;
  endpoint?: string;
  /** Where to write the report; default <run-id>.html. */
  out?: string;
  json: boolean;
}

const finished = [RunState.RUN_STATE_SUCCEEDED, RunState.RUN_STATE_FAILED, RunState.RUN_STATE_CANCELLED];

export async function report(args: ReportArgs): Promise<number> {
  if (!args.runId) throw new Error('usage: temper report <run-id> [--endpoint host:port] [--out report.html] [--json]');
  const client = new LearnerClient(learnerAddress(args.endpoint));
  try {
    if (!(await client.reachable())) throw new Error(`no learner answers at ${client.address}: temper report reads the run from the learner that ran it (--endpoint host:port)`);
    const status = await client.getRun(args.runId).then(
      (res) => res.run!,
      (err: Error) => {
        // The learner's own words ('no run "x"'), without gRPC's status prefix.
        throw new Error(err.message.replace(/^\d+ [A-Z_]+: /, ''));
      },
    );
    if (!finished.includes(status.state)) throw new Error(`run ${args.runId} is ${stateName(status.state)}: a report is rebuilt once the run has finished (temper run follows a live one)`);
    const summary = await follow(client, status, false);
    const out = args.out ?? `${args.runId}.html`;
    fs.writeFileSync(out, renderReport(summary));
    process.stderr.write(`temper: report of run ${args.runId} (${summary.steps} steps, ${summary.eval.length} evaluations) written to ${out}\n`);
    if (args.json) process.stdout.write(JSON.stringify(summary) + '\n');
    return 0;
  } finally {
    client.close();
  }
}
