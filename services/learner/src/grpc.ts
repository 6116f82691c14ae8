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
      return { run: await runs.create(spec, req.runId) };
    }),
    getRun: unary<GetRunRequest, GetRunResponse>(async (req) => ({ run: await runs.get(required(req.runId, 'run_id')) })),
    listRuns: unary<ListRunsRequest, ListRunsResponse>(async (req) => ({ runs: await runs.list(req.states) })),
    cancelRun: unary<CancelRunRequest, CancelRunResponse>(async (req) => ({ run: await runs.cancel(required(req.runId, 'run_id')) })),
    watchRun: (call: grpc.ServerWritableStream<WatchRunRequest, WatchRunResponse>) => {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      void (async () => {
        try {
          const runId = required(call.request.runId, 'run_id');
          await runs.get(runId);
          for await (const event of runs.watch(runId, ac.signal)) {
            const step = event.event?.$case === 'metrics' ? event.event.value.step : undefined;
            if (step !== undefined && step < call.request.fromStep) continue;
            call.write({ event });
          }
          call.end();
        } catch (err) {
          if (!ac.signal.aborted) call.destroy(toStatus(err));
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

function required(value: string, field: string): string {
  if (!value) throw new SpecError([`${field}: required`]);
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
