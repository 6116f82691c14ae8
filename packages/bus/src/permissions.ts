// Who may do what on the bus: one table, one row per service, saying which streams it
// writes, consumes or reads and which core subjects it publishes or subscribes. From it come
// the NATS users' permissions (natsPermissions) that the tests start nats-server with and
// the Helm chart renders (helm/temper/files/nats-permissions.json, checked against this
// table by test/nats-permissions.test.ts), and the streams each service creates at connect.
// A service that is broken into can then touch only its own part of a run: the scorer
// cannot forge rollout requests, the generator cannot read the scored groups, nobody but
// the learner streams weights to the generators.
import { deadLetterSubjectsOf } from './dead-letters';
import { StreamSpec, streams } from './streams';

export type BusService = 'learner' | 'generator' | 'scorer' | 'checkpoint-store';

export interface BusAccess {
  /** The NATS user the chart gives the service. */
  user: string;
  /** Its reply subjects start with this, so no other service can subscribe to its replies. */
  inboxPrefix: string;
  /** Streams it publishes to, and on which of their subjects. */
  writes: Write[];
  /** Streams it pulls work from with durable consumers: it manages them, acks and parks poison messages. */
  consumes: StreamSpec[];
  /** Streams it reads by subject (last message, ordered consumers, stream info). */
  reads: StreamSpec[];
  /** Streams it may purge (its own requests when a run ends). */
  purges: StreamSpec[];
  /** Core NATS subjects it publishes (in no stream). */
  publishes: string[];
  /** Core NATS subjects it subscribes to. */
  subscribes: string[];
  /** Whether it keeps checkpoints in the NATS object store (the buckets named by the prefix). */
  objectStore: boolean;
}

export interface Write {
  stream: StreamSpec;
  subjects: readonly string[];
}

/** Every subject of a stream. */
const all = (stream: StreamSpec): Write => ({ stream, subjects: stream.subjects });

const weights = 'temper.weights.>';
// Of the events (subjects in streams.ts): runs and policy versions are the learner's to
// announce, checkpoint commits the store's alone.
const runAndPolicyEvents: Write = { stream: streams.events, subjects: ['temper.events.runs.>', 'temper.events.policies.>'] };
const checkpointEvents: Write = { stream: streams.events, subjects: ['temper.events.checkpoints.>'] };

export const busAccess: Record<BusService, BusAccess> = {
  learner: {
    user: 'temper-learner',
    inboxPrefix: '_INBOX_temper_learner',
    writes: [all(streams.rolloutRequests), runAndPolicyEvents],
    consumes: [streams.scored],
    reads: [streams.events],
    purges: [streams.rolloutRequests],
    publishes: [weights],
    subscribes: [],
    objectStore: false,
  },
  generator: {
    user: 'temper-generator',
    inboxPrefix: '_INBOX_temper_generator',
    writes: [all(streams.rollouts)],
    consumes: [streams.rolloutRequests],
    reads: [streams.events],
    purges: [],
    publishes: [],
    subscribes: [weights],
    objectStore: false,
  },
  scorer: {
    user: 'temper-scorer',
    inboxPrefix: '_INBOX_temper_scorer',
    writes: [all(streams.scored)],
    consumes: [streams.rollouts],
    reads: [],
    purges: [],
    publishes: [],
    subscribes: [],
    objectStore: false,
  },
  'checkpoint-store': {
    user: 'temper-checkpoint-store',
    inboxPrefix: '_INBOX_temper_checkpoint_store',
    writes: [checkpointEvents],
    consumes: [],
    reads: [],
    purges: [],
    publishes: [],
    subscribes: [],
    objectStore: true,
  },
};

export const busServices = Object.keys(busAccess) as BusService[];

/** What a nats-server user entry's `permissions` holds. */
export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

/** The bucket prefix the chart's placeholder stands for in the rendered permissions. */
export const CHECKPOINT_BUCKET_PLACEHOLDER = '__CHECKPOINT_BUCKET__';

/**
 * The subjects `access` lets a user publish and subscribe, JetStream API included.
 * `checkpointBucket` is the object store's bucket prefix (TEMPER_CHECKPOINT_NATS_BUCKET).
 */
export function natsPermissions(access: BusAccess, checkpointBucket = 'temper-checkpoints'): NatsPermissions {
  const pub = new Set<string>(['$JS.API.INFO', ...access.publishes]);
  const sub = new Set<string>([`${access.inboxPrefix}.>`, ...access.subscribes]);
  const api = (s: string) => pub.add(`$JS.API.${s}`);
  // Every service creates (or brings up to date) the streams it uses, whichever starts first.
  for (const s of usedStreams(access)) for (const verb of ['INFO', 'CREATE', 'UPDATE']) api(`STREAM.${verb}.${s.name}`);
  for (const w of access.writes) for (const subject of w.subjects) pub.add(subject);
  for (const s of access.consumes) {
    consumerApi(api, s.name);
    pub.add(`$JS.ACK.${s.name}.>`);
    // Poison messages go to the dead-letter stream, under this stream's name.
    pub.add(deadLetterSubjectsOf(s.name));
  }
  for (const s of access.reads) {
    consumerApi(api, s.name);
    api(`STREAM.MSG.GET.${s.name}`);
    api(`DIRECT.GET.${s.name}`);
    api(`DIRECT.GET.${s.name}.>`);
  }
  for (const s of access.purges) api(`STREAM.PURGE.${s.name}`);
  if (access.objectStore) {
    for (const bucket of [`${checkpointBucket}-blobs`, `${checkpointBucket}-meta`]) {
      const stream = `OBJ_${bucket}`;
      for (const verb of ['INFO', 'CREATE', 'UPDATE', 'PURGE', 'MSG.GET', 'MSG.DELETE']) api(`STREAM.${verb}.${stream}`);
      api(`DIRECT.GET.${stream}`);
      api(`DIRECT.GET.${stream}.>`);
      consumerApi(api, stream);
      pub.add(`$O.${bucket}.>`);
      pub.add(`$JS.ACK.${stream}.>`);
    }
  }
  return { publish: { allow: [...pub] }, subscribe: { allow: [...sub] } };
}

// Creating, reading and pulling from consumers of one stream (durable or ordered).
function consumerApi(api: (s: string) => void, stream: string): void {
  for (const verb of ['CREATE', 'DURABLE.CREATE', 'INFO', 'DELETE', 'MSG.NEXT']) {
    api(`CONSUMER.${verb}.${stream}`);
    api(`CONSUMER.${verb}.${stream}.>`);
  }
}

/** The streams `service` creates or updates when it connects. */
export function streamsOf(service: BusService): StreamSpec[] {
  return usedStreams(busAccess[service]);
}

function usedStreams(a: BusAccess): StreamSpec[] {
  const used = new Set<StreamSpec>([...a.writes.map((w) => w.stream), ...a.consumes, ...a.reads, ...a.purges]);
  if (a.consumes.length) used.add(streams.deadLetters);
  return [...used];
}

/** A nats-server user with a password and its service's permissions. */
export interface NatsUser {
  user: string;
  password: string;
  permissions: NatsPermissions;
}

/**
 * The `authorization` block of a nats-server config with one user per service, each with
 * the permissions of its row (JSON is valid nats-server config).
 */
export function natsAuthorization(passwords: Record<BusService, string>, checkpointBucket?: string): { authorization: { users: NatsUser[] } } {
  return {
    authorization: {
      users: busServices.map((s) => ({ user: busAccess[s].user, password: passwords[s], permissions: natsPermissions(busAccess[s], checkpointBucket) })),
    },
  };
}

/** Where the Helm chart reads the table from (relative to the repository root). */
export const CHART_PERMISSIONS_FILE = 'helm/temper/files/nats-permissions.json';

/**
 * The table as the chart renders it: per service its user and permissions, the object
 * store's bucket prefix left as CHECKPOINT_BUCKET_PLACEHOLDER for the chart's value.
 * `npm run gen:nats-permissions` writes it to CHART_PERMISSIONS_FILE.
 */
export function chartPermissions(): Record<BusService, { user: string; permissions: NatsPermissions }> {
  return Object.fromEntries(busServices.map((s) => [s, { user: busAccess[s].user, permissions: natsPermissions(busAccess[s], CHECKPOINT_BUCKET_PLACEHOLDER) }])) as Record<
    BusService,
    { user: string; permissions: NatsPermissions }
  >;
}
