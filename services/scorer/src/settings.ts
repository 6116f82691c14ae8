// The scorer's settings, from the environment.
import * as os from 'node:os';
import { defaultMaxCompletionChars } from '@temper/rewards';

export interface ScorerSettings {
  /** Scoring threads: TEMPER_SCORER_THREADS, default one per CPU. */
  threads: number;
  /** Time one completion may take before its thread is replaced: TEMPER_SCORER_ITEM_TIMEOUT_MS. */
  itemTimeoutMs: number;
  /** Reward plugin modules (comma-separated): TEMPER_REWARD_PLUGINS. */
  plugins: string[];
  /** Completions longer than this many characters are cut and flagged: TEMPER_SCORER_MAX_CHARS. */
  maxCompletionChars: number;
  /** Most items one Score request may carry: TEMPER_SCORER_MAX_ITEMS. */
  maxItems: number;
  /** Durable consumer on TEMPER_ROLLOUTS shared by all scorers: TEMPER_SCORER_CONSUMER. */
  consumer: string;
  /** Subject filter for that consumer ('' = the whole stream): TEMPER_SCORER_FILTER. */
  filterSubject: string;
  /** How often the consumer is checked and restored if gone: TEMPER_SCORER_CONSUMER_CHECK_MS. */
  consumerCheckMs: number;
  /** Rollout groups scored at once by this scorer: TEMPER_SCORER_CONCURRENCY (default 2 per thread). */
  concurrency: number;
}

export function scorerSettings(env: NodeJS.ProcessEnv = process.env): ScorerSettings {
  return {
    threads: positiveInt(env, 'TEMPER_SCORER_THREADS', os.availableParallelism()),
    itemTimeoutMs: positiveInt(env, 'TEMPER_SCORER_ITEM_TIMEOUT_MS', 2000),
    plugins: (env.TEMPER_REWARD_PLUGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    maxCompletionChars: positiveInt(env, 'TEMPER_SCORER_MAX_CHARS', defaultMaxCompletionChars),
    maxItems: positiveInt(env, 'TEMPER_SCORER_MAX_ITEMS', 4096),
    consumer: env.TEMPER_SCORER_CONSUMER || 'scorers', // the name the chart's KEDA scaler watches
    filterSubject: env.TEMPER_SCORER_FILTER ?? '',
    consumerCheckMs: positiveInt(env, 'TEMPER_SCORER_CONSUMER_CHECK_MS', 5000),
    concurrency: positiveInt(env, 'TEMPER_SCORER_CONCURRENCY', 2 * Math.max(1, positiveInt(env, 'TEMPER_SCORER_THREADS', os.availableParallelism()))),
  };
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}
