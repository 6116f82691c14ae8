// The temper command. Each subcommand lives in commands/<name>.ts.
import { ckpt } from './commands/ckpt';
import { report } from './commands/report';
import { run } from './commands/run';
import { cancel, runs } from './commands/runs';
import { score } from './commands/score';
import { k8s } from './commands/k8s';
import { exportCommand, initModelCommand } from './commands/models';
import { up } from './commands/up';
import { credentialUsage, takeCredentialFlags } from './credentials';

const usage = `temper <command>

  up [--smoke] [--json]   start nats-server and the four services locally; Ctrl-C stops them.
                          --smoke checks each service's health and a JetStream round trip, then stops.
  run <spec.yaml> [--endpoint host:port] [--json] [--report report.html] [--export <dir>]
                          submit a run to the learner and follow it (starts a local stack when no learner
                          answers); --json prints the final summary as one JSON object on the last line;
                          --report writes an HTML report (plots, evaluations, branch comparison);
                          --export writes its last checkpoint as a Hugging Face model directory.
  runs [--endpoint host:port] [--json]
                          the learner's runs.
  cancel <run-id> [--endpoint host:port]
                          cancel a run.
  report <run-id> [--endpoint host:port] [--out report.html] [--json]
                          a finished run's HTML report, rebuilt from the metrics the learner keeps.
  ckpt ls | push <dir> | pull <id> <dir> | tag <id> <tag> | lineage <id> | rm <id> [--endpoint host:port] [--json]
                          checkpoints in the checkpoint store; temper ckpt help lists the options.
  init-model --like qwen3-0.6b|qwen2.5-0.5b|llama-3.2-1b --out <dir> [--tokenizer <dir>] [--hidden-size N --layers N ...]
                          a Hugging Face model directory of that shape with random weights; temper init-model --help.
  export <checkpoint|dir> <out> [--adapter-only] [--dtype bf16|f32] [--endpoint host:port]
                          a checkpoint as a directory transformers loads (or its adapters as a PEFT directory).
  score [--spec rewards.yaml] <completions.jsonl>
                          score {"completion","answer"} lines offline: one {"reward","components"} line each.
  k8s status | logs <service> | submit <spec.yaml> [--release R] [--namespace NS] [--context C]
                          a release on Kubernetes via your kubeconfig; temper k8s help lists the options.

${credentialUsage}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = takeCredentialFlags(argv);
  const flag = (name: string) => rest.includes(`--${name}`);
  const option = (name: string) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  // Words that are neither flags nor the values of options.
  const positional = rest.filter((a, i) => !a.startsWith('--') && !(i > 0 && ['--endpoint', '--spec', '--report', '--export', '--out'].includes(rest[i - 1])));
  switch (command) {
    case 'up':
      return up({ smoke: flag('smoke'), json: flag('json') });
    case 'run':
      if (!positional[0]) throw new Error('usage: temper run <spec.yaml> [--endpoint host:port] [--json] [--report report.html] [--export <dir>]');
      return run({ specPath: positional[0], endpoint: option('endpoint'), json: flag('json'), report: option('report'), export: option('export') });
    case 'runs':
      return runs({ endpoint: option('endpoint'), json: flag('json') });
    case 'ckpt':
      return ckpt(rest);
    case 'k8s':
      return k8s(rest);
    case 'init-model':
      return initModelCommand(rest);
    case 'export':
      return exportCommand(rest);
    case 'score':
      return score({ specPath: option('spec'), file: positional[0] });
    case 'cancel':
      return cancel({ runId: positional[0], endpoint: option('endpoint') });
    case 'report':
      return report({ runId: positional[0], endpoint: option('endpoint'), out: option('out'), json: flag('json') });
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return 0;
    default:
      process.stderr.write(`temper: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`temper: ${err.message}\n`);
    process.exit(1);
  },
);
