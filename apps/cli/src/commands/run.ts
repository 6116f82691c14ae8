// temper run <spec.yaml> [--endpoint host:port] [--json] [--export dir]: submit a run to the
// learner and follow it. Without a reachable learner (and without --endpoint), a local stack is
// started for the run and stopped after it (after the export, which reads its checkpoint store).
import { RunState, RunStatus } from '@temper/proto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LearnerClient, learnerAddress, stateName } from '../learner-client';
import { LocalStack, startLocalStack } from '../local-stack';
import { exportCheckpoint } from '../models/export';
import { renderReport } from '../report/html';

export interface RunArgs {
  specPath: string;
  endpoint?: string;
  json: boolean;
  /** Write the HTML report here when the run ends. */
  report?: string;
  /** Export the run's last checkpoint here as a Hugging Face model directory when it succeeds. */
  export?: string;
}

export interface RunSummary {
  run_id: string;
  name: string;
  state: string;
  error?: string;
  steps: number;
  last_checkpoint_id: string;
  /** The last step's metrics of each stage, by stage name. */
  final: Record<string, Record<string, number>>;
  /** Every step's metrics, in order; kind 'eval' for evaluations (of `stage` on `branch` at `step`). */
  history: { stage: string; branch: string; step: number; kind: string; values: Record<string, number> }[];
  /** One entry per evaluation: the stage and branch evaluated, its step, and the eval metrics. */
  eval: ({ stage: string; branch: string; step: number } & Record<string, number | string>)[];
}

export async function run(args: RunArgs): Promise<number> {
  let specYaml: string;
  try {
    specYaml = fs.readFileSync(args.specPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the run spec ${args.specPath}: ${(err as Error).message}`);
  }
  let client = new LearnerClient(learnerAddress(args.endpoint));
  let stack: LocalStack | undefined;
  if (!(await client.reachable())) {
    if (args.endpoint) throw new Error(`no learner answers at ${args.endpoint}`);
    client.close();
    const logDir = path.resolve('.temper', 'logs');
    process.stderr.write(`temper: no learner at ${client.address}; starting a local stack (logs in ${path.relative(process.cwd(), logDir)})\n`);
    stack = await startLocalStack({ logs: { dir: logDir } });
    client = new LearnerClient(stack.address('learner'), stack.clientAuth);
  }
  const interrupted = () => {
    process.stderr.write('\ntemper: cancelling the run\n');
    void client.cancelRun(runId).catch(() => undefined);
  };
  let runId = '';
  try {
    const { run: created } = await client.createRun({ spec: { $case: 'specYaml', value: specYaml } });
    runId = created!.runId;
    process.once('SIGINT', interrupted);
    process.stderr.write(`temper: run ${runId} submitted to ${client.address}\n`);
    const summary = await follow(client, created!, !args.json);
    if (args.report) {
      fs.writeFileSync(args.report, renderReport(summary));
      process.stderr.write(`temper: report written to ${args.report}\n`);
    }
    if (args.export && summary.state === 'succeeded') {
      const exported = await exportCheckpoint(summary.last_checkpoint_id, args.export, { endpoint: stack?.address('checkpoint-store'), auth: stack?.clientAuth });
      process.stderr.write(`temper: checkpoint ${summary.last_checkpoint_id.slice(0, 12)} exported to ${exported.dir}\n`);
    }
    if (args.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else printSummary(summary);
    return summary.state === 'succeeded' ? 0 : 1;
  } finally {
    process.off('SIGINT', interrupted);
    client.close();
    await stack?.stop();
  }
}

/** A run's events from its first, gathered into its summary; `live` prints progress as they come. */
export async function follow(client: LearnerClient, created: RunStatus, live: boolean): Promise<RunSummary> {
  let status = created;
  const history: RunSummary['history'] = [];
  const tty = process.stderr.isTTY;
  for await (const e of client.watch(created.runId)) {
    if (e.event?.$case === 'status') status = e.event.value;
    if (e.event?.$case === 'metrics') {
      const m = e.event.value;
      // A resumed stage repeats the steps after its last checkpoint: the newest value wins.
      const at = history.findIndex((h) => h.stage === m.stage && h.branch === m.branch && h.kind === m.kind && h.step === m.step);
      if (at >= 0) history.splice(at, 1);
      history.push({ stage: m.stage, branch: m.branch, step: m.step, kind: m.kind, values: m.values });
      if (live) process.stderr.write((tty ? '\r\x1b[2K' : '') + progressLine(label(m.stage, m.branch, m.kind), m.step, m.kind === 'eval' ? m.step : status.totalSteps, m.values) + (tty && m.kind !== 'eval' ? '' : '\n'));
    }
    if (e.event?.$case === 'log' && live) process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${e.event.value}\n`);
  }
  if (live && tty) process.stderr.write('\n');
  const final: RunSummary['final'] = {};
  for (const h of history) if (h.kind !== 'eval') final[h.branch ? `${h.stage}.${h.branch}` : h.stage] = h.values;
  const evals = history.filter((h) => h.kind === 'eval').map((h) => ({ stage: h.stage, branch: h.branch, step: h.step, ...h.values }));
  return {
    run_id: status.runId,
    name: status.name,
    state: stateName(status.state),
    ...(status.state === RunState.RUN_STATE_FAILED ? { error: status.error } : {}),
    steps: history.filter((h) => h.kind !== 'eval').length,
    last_checkpoint_id: status.lastCheckpointId,
    final,
    history,
    eval: evals,
  };
}

function label(stage: string, branch: string, kind: string): string {
  return `${kind === 'eval' ? 'eval ' : ''}${stage}${branch ? `[${branch}]` : ''}`;
}

const shown: [string, string][] = [
  ['reward/total', 'reward'],
  ['accuracy', 'acc'],
  ['format_rate', 'fmt'],
  ['response_length', 'len'],
  ['kl', 'kl'],
  ['entropy', 'ent'],
  ['clip_fraction', 'clip'],
  ['grad_norm', '|g|'],
  ['loss', 'loss'],
  ['lr', 'lr'],
  ['pass_at_k', 'pass@k'],
];

function progressLine(stage: string, step: number, total: number, v: Record<string, number>): string {
  const width = 20;
  // The status (with the total) may trail the metrics by an event: never past the bar's end.
  const done = total ? Math.min(width, Math.round((width * step) / total)) : 0;
  const bar = `[${'#'.repeat(done)}${'-'.repeat(width - done)}]`;
  const cols = shown.filter(([k]) => k in v).map(([k, label]) => `${label} ${fmt(v[k])}`);
  return `${stage} ${bar} ${step}/${total || '?'}  ${cols.join('  ')}`;
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3);
}

function printSummary(s: RunSummary): void {
  process.stdout.write(`run ${s.run_id} ${s.state}${s.error ? `: ${s.error}` : ''}\n`);
  for (const [stage, values] of Object.entries(s.final)) {
    process.stdout.write(`  ${stage}: ${shown.filter(([k]) => k in values).map(([k, label]) => `${label} ${fmt(values[k])}`).join('  ')}\n`);
  }
  for (const e of s.eval) {
    const v = (k: string) => (typeof e[k] === 'number' ? fmt(e[k] as number) : '-');
    process.stdout.write(`  eval ${e.stage}${e.branch ? ` [${e.branch}]` : ''} step ${e.step}: acc ${v('accuracy')}  pass@k ${v('pass_at_k')}  fmt ${v('format_rate')}  len ${v('response_length')}\n`);
  }
  if (s.last_checkpoint_id) process.stdout.write(`  checkpoint ${s.last_checkpoint_id}\n`);
}

