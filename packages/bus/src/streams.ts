// The JetStream streams Temper's services talk over. One GRPO step flows
// learner -> ROLLOUT_REQUESTS -> generators -> ROLLOUTS -> scorers -> SCORED -> learner,
// and EVENTS carries what everyone may want to know (new checkpoints, policy versions).
import { JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { deadLetterStream } from './dead-letters';

export interface StreamSpec {
  name: string;
  subjects: string[];
  retention: RetentionPolicy;
  /** Seconds JetStream remembers a Nats-Msg-Id to drop duplicate publishes. */
  duplicateWindowS: number;
  /** Seconds a message is kept at most (default: until consumed or the limits say). */
  maxAgeS?: number;
}

export const streams = {
  /** Prompt groups to sample; a work queue shared by all generators. */
  rolloutRequests: {
    name: 'TEMPER_ROLLOUT_REQUESTS',
    subjects: ['temper.rollout.requests.>'],
    retention: RetentionPolicy.Workqueue,
    duplicateWindowS: 600,
  },
  /** Sampled groups to score; a work queue shared by all scorers. */
  rollouts: {
    name: 'TEMPER_ROLLOUTS',
    subjects: ['temper.rollouts.>'],
    retention: RetentionPolicy.Workqueue,
    duplicateWindowS: 600,
  },
  /** Scored groups for the learner of each run. */
  scored: {
    name: 'TEMPER_SCORED',
    subjects: ['temper.scored.>'],
    retention: RetentionPolicy.Workqueue,
    duplicateWindowS: 600,
  },
  /** Checkpoint commits, policy versions and run events; kept for late joiners. */
  events: {
    name: 'TEMPER_EVENTS',
    subjects: ['temper.events.>'],
    retention: RetentionPolicy.Limits,
    duplicateWindowS: 120,
  },
  /** Poison messages parked by their consumers, with the reason (see dead-letters.ts). */
  deadLetters: deadLetterStream,
} as const satisfies Record<string, StreamSpec>;

/** Subjects, by run so consumers can filter to one run. */
export const subjects = {
  rolloutRequest: (runId: string) => `temper.rollout.requests.${token(runId)}`,
  rollout: (runId: string) => `temper.rollouts.${token(runId)}`,
  scored: (runId: string) => `temper.scored.${token(runId)}`,
  checkpointCommitted: (runId: string) => `temper.events.checkpoints.${token(runId || '_')}`,
  /** PolicyPublished: the versions a run's learner has given out, committed or not yet. */
  policyPublished: (runId: string) => `temper.events.policies.${token(runId)}`,
  /** A run's status snapshots: the last one on this subject is the run's current state. */
  runStatus: (runId: string) => `temper.events.runs.${token(runId)}.status`,
  /** Everything else that happens in a run: metrics, checkpoints, log lines. */
  runLog: (runId: string) => `temper.events.runs.${token(runId)}.log`,
  /** Both of the above, in the order they happened. */
  runAll: (runId: string) => `temper.events.runs.${token(runId)}.>`,
  /** Every run's status subject, to list runs. */
  allRunStatuses: 'temper.events.runs.*.status',
  /** A run's new policy weights, learner to generators (core NATS, in no stream: see weights.ts). */
  policyWeights: (runId: string) => `temper.weights.${token(runId)}`,
};

// A subject token may not hold '.', '*', '>' or whitespace; run ids are ours but names
// can come from users.
function token(s: string): string {
  if (!s) throw new Error('a run id is required to build a subject');
  return s.replace(/[.*>\s]/g, '_');
}

/** Creates the streams, or updates them to this spec; safe to call from every service. */
export async function ensureStreams(jsm: JetStreamManager, which: StreamSpec[] = Object.values(streams)): Promise<void> {
  for (const s of which) {
    const config = {
      name: s.name,
      subjects: [...s.subjects],
      retention: s.retention,
      storage: StorageType.File,
      duplicate_window: s.duplicateWindowS * 1e9,
      ...(s.maxAgeS ? { max_age: s.maxAgeS * 1e9 } : {}),
    };
    try {
      await jsm.streams.info(s.name);
      await jsm.streams.update(s.name, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(config);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && /not found/i.test(err.message);
}
