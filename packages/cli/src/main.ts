// The temper command. Each subcommand lives in commands/<name>.ts.
import { up } from './commands/up';

const usage = `temper <command>

  up [--smoke] [--json]   start nats-server and the four services locally; Ctrl-C stops them.
                          --smoke checks each service's health and a JetStream round trip, then stops.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flag = (name: string) => rest.includes(`--${name}`);
  switch (command) {
    case 'up':
      return up({ smoke: flag('smoke'), json: flag('json') });
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
