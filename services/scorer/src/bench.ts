// bench:scorer: completions scored per second on the default spec (accuracy + format),
// through the service's thread pool, with realistic ~500-token completions: reasoning in
// <think>, a final answer in <answer> or \boxed{} in the forms models write (integers,
// fractions, LaTeX, expressions, tuples, choices), half of them right. Prints one JSON
// object with --json. --jetstream also measures the whole JetStream path (rollout groups
// of 8 in, scored groups out) against a private nats-server.
import { AckPolicy } from '@nats-io/jetstream';
import { connectBus, consumeMessages, publishMessage, startNatsServer, streams, subjects } from '@temper/bus';
import { RolloutGroup, ScoredGroup } from '@temper/proto';
import { compileRewardSpec, estimateTokens, ScoreInput } from '@temper/rewards';
import { createLogger } from '@temper/service';
import * as os from 'node:os';
import { ScoringPool } from './pool';
import { startRolloutWorker } from './worker';

const args = process.argv.slice(2);
const json = args.includes('--json');
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

// Deterministic, so every run scores the same corpus.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const steps = [
  'First, let us restate the problem: we need the value of {a} times {b}, then adjust it by the remainder.',
  'We know that {a} + {b} = {s}, and subtracting {b} from both sides gives back {a}, which checks out.',
  'Consider the fraction \\frac{{a}}{{b}}; it cannot be simplified further because gcd({a}, {b}) is small.',
  'Wait, I should double-check the arithmetic: {a} \\times {b} = {p}, so the product is {p}.',
  'Let x denote the unknown. Then {a}x + {b} = {s}, hence x = \\frac{{s} - {b}}{{a}}.',
  'Substituting back, the left-hand side becomes {s}, which matches the right-hand side exactly.',
  'Alternatively, we could factor the expression as (x + {a})(x - {b}) and read off the roots.',
  'The area of the rectangle is {a} \\cdot {b} = {p} square units, and the perimeter is 2({a} + {b}) = {d}.',
  'Since the probability of each outcome is \\frac{1}{{b}}, the expected value is {a} divided by {b}.',
  'Hmm, that does not look right; going back to the previous step, the sum should be {s}, not {p}.',
];

function fill(template: string, r: () => number): string {
  const a = 2 + Math.floor(r() * 97);
  const b = 2 + Math.floor(r() * 97);
  return template.replace(/\{a\}/g, String(a)).replace(/\{b\}/g, String(b)).replace(/\{s\}/g, String(a + b)).replace(/\{p\}/g, String(a * b)).replace(/\{d\}/g, String(2 * (a + b)));
}

// [written answer, reference] pairs; the wrong ones differ from the reference.
function answerPair(r: () => number): [string, string] {
  const n = 1 + Math.floor(r() * 5000);
  const right = r() < 0.5;
  const kinds: (() => [string, string])[] = [
    () => [String(right ? n : n + 1), String(n)],
    () => [`${n.toLocaleString('en-US')}`, String(right ? n : n - 1)],
    () => [`\\frac{${n}}{${n + 3}}`, right ? `${n}/${n + 3}` : `${n + 3}/${n}`],
    () => [`${(n / 8).toFixed(3)}`, right ? `\\dfrac{${n}}{8}` : `\\dfrac{${n}}{9}`],
    () => [`${n % 7}x^2 + ${n % 5}x`, right ? `x(${n % 7}x + ${n % 5})` : `x(${n % 7}x - ${n % 5})`],
    () => [`\\sqrt{${n}}`, right ? `${n}^{1/2}` : `${n}^{1/3}`],
    () => [`(${n % 10}, ${n % 13})`, right ? `(${n % 10},${n % 13})` : `(${n % 13},${n % 10 + 20})`],
    () => [`(${'ABCDE'[n % 5]})`, right ? 'ABCDE'[n % 5] : 'ABCDE'[(n + 1) % 5]],
    () => [`${n % 100}\\%`, right ? String((n % 100) / 100) : String((n % 100) / 10)],
    () => [`${n} \\text{ cm}`, String(right ? n : n * 10)],
  ];
  return kinds[Math.floor(r() * kinds.length)]();
}

export function benchCorpus(count: number, seed = 7): ScoreInput[] {
  const r = rng(seed);
  const out: ScoreInput[] = [];
  for (let i = 0; i < count; i++) {
    let think = '';
    while (think.length < 1900 + r() * 200) think += fill(steps[Math.floor(r() * steps.length)], r) + (r() < 0.3 ? '\n\n' : ' ');
    const [answer, reference] = answerPair(r);
    const style = r();
    const completion =
      style < 0.75
        ? `<think>\n${think}\n</think>\n<answer>${answer}</answer>`
        : style < 0.9
          ? `${think}\nTherefore the final answer is $\\boxed{${answer}}$.`
          : `<think>\n${think}\n</think>\n<answer>${answer} or maybe ${reference}</answer>`;
    out.push({ completion, reference });
  }
  return out;
}

async function main(): Promise<void> {
  const count = arg('n', 20000);
  const threads = arg('threads', os.availableParallelism());
  const batch = arg('batch', 256);
  const items = benchCorpus(count);
  const meanChars = items.reduce((s, i) => s + i.completion.length, 0) / items.length;

  // One thread, in process: what a single core does without any messaging.
  const spec = compileRewardSpec(undefined);
  const single = items.slice(0, Math.min(count, 10000));
  for (const item of single) spec.score(item); // warm: the JIT roughly triples the rate
  const t1 = performance.now();
  let correct = 0;
  for (const item of single) correct += spec.score(item).components.accuracy;
  const singleRate = single.length / ((performance.now() - t1) / 1000);

  const pool = new ScoringPool({ threads, itemTimeoutMs: 2000 });
  await pool.score(undefined, items.slice(0, 8000)); // threads up and warm
  const t0 = performance.now();
  const batches: Promise<unknown>[] = [];
  for (let i = 0; i < items.length; i += batch) batches.push(pool.score(undefined, items.slice(i, i + batch)));
  await Promise.all(batches);
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();

  const jetstream = args.includes('--jetstream') ? await jetstreamRate(items, threads) : undefined;

  const report = {
    bench: 'scorer',
    spec: 'default (accuracy + format)',
    completions: count,
    meanChars: Math.round(meanChars),
    meanTokens: Math.round(estimateTokens('x'.repeat(Math.round(meanChars)))),
    threads,
    cpus: os.availableParallelism(),
    batch,
    seconds: Number(seconds.toFixed(3)),
    completionsPerSecond: Math.round(count / seconds),
    singleThreadInProcessPerSecond: Math.round(singleRate),
    accuracyRate: Number((correct / single.length).toFixed(3)),
    timeouts: pool.stats.timeouts,
    ...(jetstream ? { jetstreamCompletionsPerSecond: Math.round(jetstream.perSecond), jetstreamGroups: jetstream.groups } : {}),
  };
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else {
    process.stdout.write(`scored ${count} completions (~${report.meanTokens} tokens each) on ${threads} threads in ${report.seconds} s\n`);
    process.stdout.write(`${report.completionsPerSecond} completions/s (one thread in process: ${report.singleThreadInProcessPerSecond}/s)\n`);
    if (jetstream) process.stdout.write(`through JetStream: ${Math.round(jetstream.perSecond)} completions/s\n`);
  }
}

// Groups of 8 completions published to the rollouts stream, scored by the worker, and
// counted as they arrive on the scored stream.
async function jetstreamRate(items: ScoreInput[], threads: number): Promise<{ perSecond: number; groups: number }> {
  const size = 8;
  const nats = await startNatsServer();
  const bus = await connectBus(nats.url, 'bench-scorer');
  const pool = new ScoringPool({ threads, itemTimeoutMs: 2000 });
  const runId = `bench-${process.pid}`;
  const worker = startRolloutWorker(bus, pool, { consumer: 'bench', filterSubject: '', log: createLogger('bench', {}), concurrency: arg('concurrency', 2 * threads) });
  try {
    await worker.ready;
    await bus.jsm.consumers.add(streams.scored.name, { durable_name: 'bench_scored', ack_policy: AckPolicy.Explicit, filter_subject: subjects.scored(runId) });
    const groups = Math.floor(items.length / size);
    let got = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => (done = resolve));
    const sub = await consumeMessages(bus.js, ScoredGroup, { stream: streams.scored.name, consumer: 'bench_scored' }, async () => {
      if (++got === groups) done();
    });
    const t0 = performance.now();
    const publishes: Promise<unknown>[] = [];
    for (let g = 0; g < groups; g++) {
      const slice = items.slice(g * size, g * size + size);
      const group = RolloutGroup.fromPartial({
        key: { runId, step: 1, groupIndex: g },
        reference: slice[0].reference,
        policyVersion: 1,
        completions: slice.map((i) => ({ text: i.completion, tokenIds: [] })),
      });
      publishes.push(publishMessage(bus.js, subjects.rollout(runId), RolloutGroup, group));
    }
    await Promise.all(publishes);
    await all;
    const seconds = (performance.now() - t0) / 1000;
    await sub.stop();
    return { perSecond: (groups * size) / seconds, groups };
  } finally {
    await worker.stop();
    await pool.close();
    await bus.close();
    await nats.stop();
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`bench:scorer: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
