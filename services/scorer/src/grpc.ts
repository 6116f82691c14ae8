// temper.v1.RewardScorer over gRPC: Score checks the request (INVALID_ARGUMENT names the
// field) and scores on the pool; ListRewards describes every registered component.
import * as grpc from '@grpc/grpc-js';
import {
  ListRewardsResponse,
  RewardInfo,
  RewardScorerServer,
  RewardScorerService,
  ScoreRequest,
  ScoreResponse,
  serviceNames,
} from '@temper/proto';
import { trace, Tracer } from '@opentelemetry/api';
import { RewardRegistry, RewardSpecError, ScoreInput } from '@temper/rewards';
import { contextFromCall, type Logger, type ServiceBinding } from '@temper/service';
import { withSpan } from '@temper/telemetry';
import type { ScoringPool } from './pool';

export interface HandlerOptions {
  maxItems: number;
  log?: Logger;
  /** Each Score call runs in a span of this tracer, continuing the caller's trace. */
  tracer?: Tracer;
}

export function rewardScorerBinding(pool: ScoringPool, opts: HandlerOptions): ServiceBinding {
  return { name: serviceNames.scorer, definition: RewardScorerService, implementation: rewardScorerHandlers(pool, opts), access: { score: 'read', listRewards: 'read' } };
}

export class InvalidArgument extends Error {}

export function rewardScorerHandlers(pool: ScoringPool, opts: HandlerOptions): RewardScorerServer {
  const tracer = opts.tracer ?? trace.getTracer('temper.scorer');
  return {
    score: (call, callback) => {
      const attributes = { 'temper.items': call.request.items.length };
      withSpan(tracer, 'RewardScorer/Score', { parent: contextFromCall(call), attributes }, () => score(pool, call.request, opts.maxItems)).then(
        (res) => callback(null, res),
        (err) => callback(toStatus(err, opts.log)),
      );
    },
    listRewards: (_call, callback) => callback(null, listRewards(pool.registry)),
  };
}

async function score(pool: ScoringPool, req: ScoreRequest, maxItems: number): Promise<ScoreResponse> {
  if (req.items.length > maxItems) throw new InvalidArgument(`items: at most ${maxItems} items per request, got ${req.items.length}`);
  const { compiled } = pool.compile(req.spec);
  const needsReference = compiled.components.some((c) => c.component.needsReference);
  const items: ScoreInput[] = req.items.map((item, i) => {
    if (needsReference && item.reference.trim() === '') {
      throw new InvalidArgument(`items[${i}].reference: required by ${compiled.components.filter((c) => c.component.needsReference).map((c) => c.name).join(', ')}`);
    }
    return { completion: item.completion, reference: item.reference, prompt: item.prompt, completionTokens: item.completionTokens, maxTokens: item.maxTokens, environmentRewards: item.environmentRewards };
  });
  return { rewards: await pool.score(req.spec, items) };
}

/** What ListRewards says about a registry. */
export function listRewards(registry: RewardRegistry): ListRewardsResponse {
  return {
    rewards: registry.list().map(
      (c): RewardInfo => ({
        name: c.name,
        description: c.description,
        options: Object.entries(c.options).map(([name, o]) => ({ name, type: o.type, defaultValue: o.default, description: o.description })),
      }),
    ),
  };
}

function toStatus(err: unknown, log?: Logger): Partial<grpc.StatusObject> {
  if (err instanceof RewardSpecError || err instanceof InvalidArgument) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  log?.error('scoring failed', { err });
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
