// A PolicyLearner client with promises, and where to find the learner.
import {
  CancelRunResponse,
  CreateRunRequest,
  CreateRunResponse,
  GetRunResponse,
  ListRunsResponse,
  PolicyLearnerClient,
  RunEvent,
  RunState,
} from '@temper/proto';
import { addressEnvVar, ClientAuthOptions, defaultPorts, grpcClientSetup } from '@temper/service';

export function learnerAddress(endpoint?: string): string {
  return endpoint || process.env[addressEnvVar('learner')] || `127.0.0.1:${defaultPorts.learner}`;
}

export class LearnerClient {
  private readonly raw: PolicyLearnerClient;

  /** `auth`: TLS and bearer token (default: from the environment, TEMPER_TLS_* and TEMPER_AUTH_TOKEN). */
  constructor(readonly address: string, auth: ClientAuthOptions = {}) {
    const { credentials, options } = grpcClientSetup(address, auth);
    this.raw = new PolicyLearnerClient(address, credentials, options);
  }

  createRun(req: Partial<CreateRunRequest>): Promise<CreateRunResponse> {
    return new Promise((resolve, reject) => this.raw.createRun(CreateRunRequest.fromPartial(req), (err, res) => (err ? reject(err) : resolve(res))));
  }

  getRun(runId: string): Promise<GetRunResponse> {
    return new Promise((resolve, reject) => this.raw.getRun({ runId }, (err, res) => (err ? reject(err) : resolve(res))));
  }

  listRuns(states: RunState[] = []): Promise<ListRunsResponse> {
    return new Promise((resolve, reject) => this.raw.listRuns({ states }, (err, res) => (err ? reject(err) : resolve(res))));
  }

  cancelRun(runId: string): Promise<CancelRunResponse> {
    return new Promise((resolve, reject) => this.raw.cancelRun({ runId }, (err, res) => (err ? reject(err) : resolve(res))));
  }

  /** The run's events until it ends (or the returned stream is cancelled). */
  async *watch(runId: string): AsyncGenerator<RunEvent> {
    const call = this.raw.watchRun({ runId, fromStep: 0 });
    try {
      for await (const res of call as AsyncIterable<{ event?: RunEvent }>) if (res.event) yield res.event;
    } finally {
      call.cancel();
    }
  }

  /** Whether a learner answers at the address within the time. */
  reachable(timeoutMs = 1000): Promise<boolean> {
    return new Promise((resolve) => this.raw.waitForReady(Date.now() + timeoutMs, (err) => resolve(!err)));
  }

  close(): void {
    this.raw.close();
  }
}

export const stateName = (s: RunState) => RunState[s]?.replace('RUN_STATE_', '').toLowerCase() ?? String(s);
