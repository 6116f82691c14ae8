// NATS with mutual TLS and one user per service, each allowed only its own subjects (the
// table in packages/bus/src/permissions.ts): every service as its own process runs a GRPO
// run end to end through such a server without one refused operation, and a service that
// reaches outside its set (forging another's messages, reading another's work, listening
// on another's replies or weights) is refused by the server.
import { AckPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Bus, BusService, busAccess, busServices, CHART_PERMISSIONS_FILE, chartPermissions, connectBus, natsAuthorization, NatsServer, startNatsServer, streams, subjects } from '@temper/bus';
import { RunState } from '@temper/proto';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../apps/cli/src/learner-client';
import { LocalStack, startLocalStack } from '../apps/cli/src/local-stack';
import { ObjectStoreBackend } from '../services/checkpoint-store/src';
import { makeTestCa, TestCa } from './harness/certificates';

const spec = `
name: guarded-bus
seed: 3
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128, tie_word_embeddings: true }
stages:
  - name: rl
    grpo: { steps: 2, prompts_per_step: 2, group_size: 2, save_every: 1, task: { uri: "builtin:arithmetic", fields: { difficulty: "1" } }, sampling: { max_new_tokens: 6 } }
`;

const passwords = Object.fromEntries(busServices.map((s) => [s, `pw-${s}-for-the-test`])) as Record<BusService, string>;

/** Environment that makes a process connect as `service`, with its client certificate. */
function credentials(service: BusService, ca: TestCa, client: { cert: string; key: string }): Record<string, string> {
  return { NATS_USER: busAccess[service].user, NATS_PASSWORD: passwords[service], NATS_TLS_CA: ca.cert, NATS_TLS_CERT: client.cert, NATS_TLS_KEY: client.key };
}

/** Runs `fn` with `env` set in this process (connectBus reads its credentials from there). */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('NATS with mutual TLS and per-service permissions', () => {
  let dir: string;
  let ca: TestCa;
  let client: { cert: string; key: string };
  let nats: NatsServer;
  let logFile: string;
  const buses: Partial<Record<BusService, Bus>> = {};
  const as = (s: BusService) => buses[s]!;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-natsec-'));
    ca = makeTestCa(path.join(dir, 'pki'), 'temper-nats-ca');
    const server = ca.issue('nats');
    client = ca.issue('temper-service');
    logFile = path.join(dir, 'nats.log');
    const config = { tls: { cert_file: server.cert, key_file: server.key, ca_file: ca.cert, verify: true }, ...natsAuthorization(passwords) };
    fs.writeFileSync(path.join(dir, 'nats.conf'), JSON.stringify(config, null, 2));
    nats = await startNatsServer({ args: ['-c', path.join(dir, 'nats.conf'), '-l', logFile] });
    for (const s of busServices) buses[s] = await withEnv(credentials(s, ca, client), () => connectBus(nats.url, `natsec-${s}`, { service: s }));
  });
  afterAll(async () => {
    for (const b of Object.values(buses)) await b?.close().catch(() => undefined);
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const violations = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => / Violation - /.test(l)) : []);

  it('is the table the Helm chart renders its NATS users from', () => {
    const file = path.join(__dirname, '..', CHART_PERMISSIONS_FILE);
    // After a change to the table: npm run gen:nats-permissions.
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(chartPermissions());
  });

  it('refuses a client without TLS, without a certificate, without a user or with a wrong password', async () => {
    const refused = (opts: Parameters<typeof connect>[0]) => connect({ servers: nats.url, reconnect: false, timeout: 3000, ...opts }).then((nc) => nc.close().then(() => 'connected'), (e: Error) => e.message);
    const tls = { ca: fs.readFileSync(ca.cert, 'utf8'), cert: fs.readFileSync(client.cert, 'utf8'), key: fs.readFileSync(client.key, 'utf8') };
    const user = busAccess.scorer.user;
    expect(await refused({ user, pass: passwords.scorer })).not.toBe('connected'); // no TLS
    expect(await refused({ user, pass: passwords.scorer, tls: { ca: tls.ca } })).not.toBe('connected'); // no client certificate
    expect(await refused({ tls })).not.toBe('connected'); // no user
    expect(await refused({ user, pass: 'guessed', tls })).not.toBe('connected');
    expect(await refused({ user, pass: passwords.scorer, tls })).toBe('connected');
  });

  it('refuses a service publishing a subject outside its set', async () => {
    // The scorer may not request rollouts, the generator may not score, only the learner
    // announces runs and only the store commits checkpoints.
    const forgeries: [BusService, string][] = [
      ['scorer', subjects.rolloutRequest('victim')],
      ['generator', subjects.scored('victim')],
      ['scorer', subjects.checkpointCommitted('victim')],
      ['learner', subjects.checkpointCommitted('victim')],
      ['generator', subjects.runStatus('victim')],
    ];
    for (const [service, subject] of forgeries) {
      await expect(as(service).js.publish(subject, new Uint8Array([1]), { timeout: 3000 })).rejects.toThrow(`Permissions Violation for Publish to "${subject}"`);
    }
    // Only the learner streams weights (core NATS: the server drops it and says so in its log).
    as('scorer').nc.publish(subjects.policyWeights('victim'), new Uint8Array([1]));
    await as('scorer').nc.flush();
    forgeries.push(['scorer', subjects.policyWeights('victim')]);
    const logged = violations().join('\n');
    for (const [service, subject] of forgeries) expect(logged).toContain(`Publish Violation - User "${busAccess[service].user}", Subject "${subject}"`);
    // Nothing forged was stored.
    const jsm = as('learner').jsm;
    expect((await jsm.streams.info(streams.rolloutRequests.name)).state.messages).toBe(0);
    expect((await jsm.streams.info(streams.events.name)).state.messages).toBe(0);
    // A service's own subject goes through.
    await expect(as('learner').js.publish(subjects.rolloutRequest('natsec-own'), new Uint8Array([1]))).resolves.toMatchObject({ stream: streams.rolloutRequests.name });
    await jsm.streams.purge(streams.rolloutRequests.name);
  });

  it('refuses a service subscribing to or consuming what is not its own', async () => {
    const subscribeRefused = async (s: BusService, subject: string) => {
      const sub = as(s).nc.subscribe(subject);
      const closed = await Promise.race([sub.closed, new Promise((r) => setTimeout(() => r('still open'), 3000))]);
      sub.unsubscribe();
      return closed instanceof Error ? closed.message : String(closed);
    };
    expect(await subscribeRefused('scorer', subjects.policyWeights('victim'))).toMatch(/permission/i);
    expect(await subscribeRefused('generator', 'temper.scored.>')).toMatch(/permission/i);
    expect(await subscribeRefused('generator', `${busAccess.learner.inboxPrefix}.>`)).toMatch(/permission/i);
    expect(await subscribeRefused('checkpoint-store', '>')).toMatch(/permission/i);
    // The generator may not take the learner's scored groups from their stream, nor the scorer read run events.
    await expect(as('generator').jsm.consumers.add(streams.scored.name, { durable_name: 'thief', ack_policy: AckPolicy.Explicit })).rejects.toThrow(/permission|timeout/i);
    await expect(as('scorer').jsm.streams.getMessage(streams.events.name, { last_by_subj: subjects.runStatus('victim') })).rejects.toThrow(/permission|timeout/i);
    // Nor change a stream it does not use.
    await expect(as('scorer').jsm.streams.purge(streams.rolloutRequests.name)).rejects.toThrow(/permission|timeout/i);
    // A service's own subscriptions stay open.
    expect(await subscribeRefused('generator', subjects.policyWeights('natsec-own'))).toBe('still open');
  });

  it('lets the checkpoint store keep checkpoints in its object store buckets, and no one else', async () => {
    const before = violations().length;
    const store = await ObjectStoreBackend.open(as('checkpoint-store').nc, { bucketPrefix: 'temper-checkpoints' });
    const bytes = Buffer.from('weights of a checkpoint');
    const sha = createHash('sha256').update(bytes).digest('hex');
    const file = path.join(dir, 'blob');
    fs.writeFileSync(file, bytes);
    await store.importBlob(sha, file);
    expect(await store.hasBlob(sha)).toBe(true);
    const back: Buffer[] = [];
    for await (const chunk of store.readBlob(sha, 1024)) back.push(Buffer.from(chunk));
    expect(Buffer.concat(back)).toEqual(bytes);
    await store.deleteBlob(sha);
    expect(await store.hasBlob(sha)).toBe(false);
    expect(violations().slice(before)).toEqual([]);
    // The learner reaches checkpoints through the store's API only.
    await expect(ObjectStoreBackend.open(as('learner').nc, { bucketPrefix: 'temper-checkpoints' })).rejects.toThrow(/permission|timeout/i);
  });

  describe('the services as processes, with these credentials', () => {
    let stack: LocalStack;
    let learner: LearnerClient;
    beforeAll(async () => {
      stack = await startLocalStack({
        natsUrl: nats.url,
        logs: { dir: path.join(dir, 'logs') },
        env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), TEMPER_ENGINE_THREADS: '1', TEMPER_GENERATOR_ACK_WAIT_S: '5' },
        serviceEnv: Object.fromEntries(busServices.map((s) => [s, credentials(s, ca, client)])),
      });
      learner = new LearnerClient(stack.address('learner'), stack.clientAuth);
    });
    afterAll(async () => {
      learner?.close();
      await stack?.stop();
    });

    it('run GRPO end to end without one refused operation', async () => {
      const before = violations().length;
      const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec } });
      let final = RunState.RUN_STATE_UNSPECIFIED;
      let error = '';
      const steps: number[] = [];
      for await (const e of learner.watch(run!.runId)) {
        if (e.event?.$case === 'status') [final, error] = [e.event.value.state, e.event.value.error];
        if (e.event?.$case === 'metrics') steps.push(e.event.value.step);
      }
      expect(error).toBe('');
      expect(final).toBe(RunState.RUN_STATE_SUCCEEDED);
      expect(steps).toEqual([1, 2]);
      expect(violations().slice(before)).toEqual([]);
    });
  });
});
