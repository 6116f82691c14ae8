// PolicyLearner over gRPC: thin translation between the API and the RunManager.
import * as grpc from '@grpc/grpc-js';
import {
  CancelRunRequest,
  CancelRunResponse,
  CreateRunRequest,
  CreateRunResponse,
  GetRunRequest,
  GetRunResponse,
  ListRunsRequest,
  ListRunsResponse,
  PolicyLearnerServer,
  PolicyLearnerService,
  serviceNames,
  WatchRunRequest,
  WatchRunResponse,
} from '@temper/proto';
import type { ServiceBinding } from '@temper/service';
import { NotFoundError, RunManager } from './runs/manager';
import { runSpecFromYaml, SpecError } from './spec';

export function policyLearnerService(runs: RunManager): ServiceBinding {
  const impl: PolicyLearnerServer = {
    createRun: unary<CreateRunRequest, CreateRunResponse>(async (req) => {
      const spec = req.spec?.$case === 'specYaml' ? runSpecFromYaml(req.spec.value) : req.spec?.$case === 'runSpec' ? req.spec.value : undefined;
      if (!spec) throw new SpecError(['spec: give run_spec or spec_yaml']);
      return { run: await runs.create(spec, req.runId ? runIdField(req.runId) : '') };
    }),
    getRun: unary<GetRunRequest, GetRunResponse>(async (req) => ({ run: await runs.get(runIdField(req.runId)) })),
    listRuns: unary<ListRunsRequest, ListRunsResponse>(async (req) => ({ runs: await runs.list(req.states) })),
    cancelRun: unary<CancelRunRequest, CancelRunResponse>(async (req) => ({ run: await runs.cancel(runIdField(req.runId)) })),
    watchRun: (call: grpc.ServerWritableStream<WatchRunRequest, WatchRunResponse>) => {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      void (async () => {
        try {
          const runId = runIdField(call.request.runId);
          await runs.get(runId);
          for await (const event of runs.watch(runId, ac.signal)) {
            const step = event.event?.$case === 'metrics' ? event.event.value.step : undefined;
            if (step !== undefined && step < call.request.fromStep) continue;
            call.write({ event });
          }
          call.end();
        } catch (err) {
          // emit, not destroy: a destroyed stream never sends its status, and the caller would wait forever.
          if (!ac.signal.aborted) call.emit('error', toStatus(err));
        }
      })();
    },
  };
  return {
    name: serviceNames.learner,
    definition: PolicyLearnerService,
    implementation: impl as unknown as grpc.UntypedServiceImplementation,
    access: { createRun: 'control', cancelRun: 'control', getRun: 'read', listRuns: 'read', watchRun: 'read' },
  };
}

// A run id becomes part of NATS subjects, consumer names and keys: letters, digits, '_' and
// '-' only ('.' would split a subject, and 'a.b' would meet 'a_b' there), and not too long.
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function runIdField(value: string, field = 'run_id'): string {
  if (!value) throw new SpecError([`${field}: required`]);
  if (!RUN_ID.test(value)) throw new SpecError([`${field}: must be 1-128 letters, digits, '_' or '-' (starting with a letter or digit), got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`]);
  return value;
}

function unary<Req, Res>(handler: (req: Req) => Promise<Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    handler(call.request).then(
      (res) => callback(null, res),
      (err) => callback(toStatus(err)),
    );
  };
}

function toStatus(err: unknown): grpc.ServiceError {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof SpecError ? grpc.status.INVALID_ARGUMENT : err instanceof NotFoundError ? grpc.status.NOT_FOUND : grpc.status.INTERNAL;
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}
