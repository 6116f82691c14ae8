// The scorer's settings, from the environment.
import * as os from 'node:os';
import { defaultMaxCompletionChars } from '@temper/rewards';

export interface ScorerSettings {
  /** Scoring threads: TEMPER_SCORER_THREADS, default one per CPU. */
  threads: number;
  /** Time one completion may take before its thread is replaced: TEMPER_SCORER_ITEM_TIMEOUT_MS. */
  itemTimeoutMs: number;
  /**
   * Heap one scoring thread may use, in MiB: an item that needs more gets a result flagged
   * "out_of_memory" and its thread is replaced: TEMPER_SCORER_THREAD_MEMORY_MB (default 256).
   */
  threadMemoryMb: number;
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
  /** Rollout groups being scored at once by this scorer (publishing holds no slot): TEMPER_SCORER_CONCURRENCY (default 2 per thread). */
  concurrency: number;
  /**
   * Requests of built-in components up to this many characters of completions are scored on
   * the service's own thread, without the hop to a scoring thread: TEMPER_SCORER_INLINE_CHARS
   * (default 65536, about a millisecond of scoring; 0 sends everything to the threads).
   */
  inlineMaxChars: number;
  /** How long a group may stay unacknowledged before it goes to another scorer: TEMPER_SCORER_ACK_WAIT_S (default 60). */
  ackWaitMs: number;
}

export function scorerSettings(env: NodeJS.ProcessEnv = process.env): ScorerSettings {
  return {
    threads: positiveInt(env, 'TEMPER_SCORER_THREADS', os.availableParallelism()),
    itemTimeoutMs: positiveInt(env, 'TEMPER_SCORER_ITEM_TIMEOUT_MS', 2000),
    threadMemoryMb: positiveInt(env, 'TEMPER_SCORER_THREAD_MEMORY_MB', 256),
    plugins: (env.TEMPER_REWARD_PLUGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    maxCompletionChars: positiveInt(env, 'TEMPER_SCORER_MAX_CHARS', defaultMaxCompletionChars),
    maxItems: positiveInt(env, 'TEMPER_SCORER_MAX_ITEMS', 4096),
    consumer: env.TEMPER_SCORER_CONSUMER || 'scorers', // the name the chart's KEDA scaler watches
    filterSubject: env.TEMPER_SCORER_FILTER ?? '',
    consumerCheckMs: positiveInt(env, 'TEMPER_SCORER_CONSUMER_CHECK_MS', 5000),
    concurrency: positiveInt(env, 'TEMPER_SCORER_CONCURRENCY', 2 * Math.max(1, positiveInt(env, 'TEMPER_SCORER_THREADS', os.availableParallelism()))),
    inlineMaxChars: integer(env, 'TEMPER_SCORER_INLINE_CHARS', 65536, 0),
    ackWaitMs: positiveInt(env, 'TEMPER_SCORER_ACK_WAIT_S', 60) * 1000,
  };
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return integer(env, name, fallback, 1);
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be ${min === 1 ? 'a positive' : 'a non-negative'} integer, got "${raw}"`);
  return n;
}
