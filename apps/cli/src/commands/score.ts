// temper score [--spec rewards.yaml] <completions.jsonl>: scores a JSONL file offline with
// the same reward code the scorer service runs, so a reward can be checked before a run
// trains with it. Each input line {"completion", "answer"} gives one output line
// {"reward", "components"} (plus "flags" when there are any), in order. Custom
// components load from TEMPER_REWARD_PLUGINS, as in the service.
import {
  compileRewardSpec,
  CompiledRewardSpec,
  createRegistry,
  loadRewardPlugins,
  parseRewardSpecText,
  ScoreInput,
} from '@temper/rewards';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

export async function score(args: { specPath?: string; file?: string; out?: NodeJS.WritableStream }): Promise<number> {
  if (!args.file) throw new Error('usage: temper score [--spec rewards.yaml] <completions.jsonl>  ("-" reads stdin)');
  const spec = loadSpec(args.specPath);
  const out = args.out ?? process.stdout;
  const input = args.file === '-' ? process.stdin : openInput(args.file);
  const name = args.file === '-' ? 'stdin' : args.file;
  let lineNo = 0;
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    const item = parseLine(line, `${name}:${lineNo}`);
    const r = spec.score(item);
    const record: Record<string, unknown> = { reward: r.total, components: r.components };
    if (r.flags.length > 0) record.flags = r.flags;
    if (!out.write(JSON.stringify(record) + '\n')) await new Promise((resolve) => out.once('drain', resolve));
  }
  return 0;
}

function loadSpec(specPath: string | undefined): CompiledRewardSpec {
  const registry = createRegistry();
  const plugins = (process.env.TEMPER_REWARD_PLUGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  loadRewardPlugins(plugins, registry);
  if (!specPath) return compileRewardSpec(undefined, { registry });
  let text: string;
  try {
    text = fs.readFileSync(specPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the reward spec ${specPath}: ${(err as Error).message}`);
  }
  const label = path.basename(specPath);
  return compileRewardSpec(parseRewardSpecText(text, label), { registry, path: label });
}

function openInput(file: string): fs.ReadStream {
  if (!fs.existsSync(file)) throw new Error(`no such file: ${file}`);
  return fs.createReadStream(file, { encoding: 'utf8' });
}

// One {"completion": string, "answer": string | number} object; where says file:line.
function parseLine(line: string, where: string): ScoreInput {
  if (line.trim() === '') throw new Error(`${where}: empty line; expected {"completion": ..., "answer": ...}`);
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: expected a JSON object {"completion": ..., "answer": ...}`);
  const o = v as Record<string, unknown>;
  if (typeof o.completion !== 'string') throw new Error(`${where}: "completion" must be a string`);
  if (typeof o.answer !== 'string' && typeof o.answer !== 'number') throw new Error(`${where}: "answer" must be a string or a number`);
  const item: ScoreInput = { completion: o.completion, reference: String(o.answer) };
  if (typeof o.prompt === 'string') item.prompt = o.prompt;
  if (typeof o.completion_tokens === 'number') item.completionTokens = o.completion_tokens;
  if (typeof o.max_tokens === 'number') item.maxTokens = o.max_tokens;
  return item;
}
