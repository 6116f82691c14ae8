// temper.v1.RolloutGenerator over gRPC, for direct use (evaluation, interactive checks):
// Generate samples with the served policy, LoadPolicy swaps in a checkpoint, GetServingInfo
// says what is served. Bad input is INVALID_ARGUMENT with the field named; a policy older
// than the caller needs is FAILED_PRECONDITION.
import * as grpc from '@grpc/grpc-js';
import type { Tracer } from '@opentelemetry/api';
import { GenerateRequest, GenerateResponse, GetServingInfoResponse, LoadPolicyResponse, RolloutGeneratorServer, RolloutGeneratorService, serviceNames } from '@temper/proto';
import { contextFromCall, Logger, ServiceBinding } from '@temper/service';
import { withSpan } from '@temper/telemetry';
import { failedPrecondition, invalidArgument, statusOf } from './errors';
import type { PolicyManager, ServedPolicy } from './policy';
import { checkSampling, promptTokens, stopTokens, toCompletion } from './sampling';

export const MAX_PROMPTS_PER_CALL = 1024;

export interface GeneratorApiOptions {
  policy: PolicyManager;
  tracer: Tracer;
  log: Logger;
  generatorId: string;
  /** What the engine runs on, as GetServingInfo reports it. */
  device?: string;
}

export function rolloutGeneratorBinding(opts: GeneratorApiOptions): ServiceBinding {
  return {
    name: serviceNames.generator,
    definition: RolloutGeneratorService,
    implementation: rolloutGeneratorHandlers(opts),
    // Sampling changes nothing; loading a policy changes what every later caller gets.
    access: { loadPolicy: 'control', generate: 'read', getServingInfo: 'read' },
  };
}

export function rolloutGeneratorHandlers(opts: GeneratorApiOptions): RolloutGeneratorServer {
  const unary =
    <Req, Res>(name: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      withSpan(opts.tracer, `RolloutGenerator/${name}`, { parent: contextFromCall(call) }, () => fn(call.request)).then(
        (res) => callback(null, res),
        (err: unknown) => {
          const code = statusOf(err);
          const message = err instanceof Error ? err.message : String(err);
          if (code === grpc.status.INTERNAL) opts.log.error(`${name} failed`, { err });
          callback({ code, details: message });
        },
      );
    };

  return {
    generate: unary('Generate', (req: GenerateRequest) => opts.policy.use((p) => generate(req, p, opts.policy))),

    loadPolicy: unary('LoadPolicy', async (req): Promise<LoadPolicyResponse> => {
      if (!req.checkpoint) throw invalidArgument('checkpoint', 'is required (a checkpoint id, id prefix or tag)');
      const p = await opts.policy.loadPolicy(req.checkpoint, req.policyVersion);
      return { manifest: p.manifest, policyVersion: p.version };
    }),

    getServingInfo: unary('GetServingInfo', async (): Promise<GetServingInfoResponse> => {
      const p = opts.policy.current;
      return {
        checkpointId: p?.manifest.id ?? '',
        policyVersion: p?.version ?? 0,
        model: p?.summary,
        device: opts.device ?? 'cpu',
        sequencesInFlight: opts.policy.sequencesInFlight,
        runId: p?.runId ?? '',
        generatorId: opts.generatorId,
      };
    }),
  };
}

async function generate(req: GenerateRequest, p: ServedPolicy | undefined, policy: PolicyManager): Promise<GenerateResponse> {
  if (req.prompts.length === 0) throw invalidArgument('prompts', 'must hold at least one prompt');
  if (req.prompts.length > MAX_PROMPTS_PER_CALL) throw invalidArgument('prompts', `may hold at most ${MAX_PROMPTS_PER_CALL} prompts (got ${req.prompts.length})`);
  if (!p) throw failedPrecondition('no policy is loaded yet (call LoadPolicy, or start the generator with TEMPER_GENERATOR_CHECKPOINT)');
  if (p.version < req.minPolicyVersion) {
    throw failedPrecondition(`the served policy is version ${p.version} (checkpoint ${p.manifest.id}), older than min_policy_version ${req.minPolicyVersion}`);
  }
  const s = checkSampling(req.sampling, p.limits);
  const prompts = req.prompts.map((prompt, i) => {
    const field = `prompts[${i}]`;
    if (!req.applyChatTemplate) return promptTokens(prompt, p.tokenizer, p.limits, s.maxNewTokens, field);
    if (prompt.tokenIds.length > 0) throw invalidArgument(`${field}.token_ids`, 'cannot be used with apply_chat_template (send text)');
    if (!prompt.text) throw invalidArgument(`${field}.text`, 'is required with apply_chat_template');
    const text = p.tokenizer.applyChatTemplate([{ role: 'user', content: prompt.text }], { addGenerationPrompt: true });
    return promptTokens({ text, tokenIds: [] }, p.tokenizer, p.limits, s.maxNewTokens, field);
  });
  policy.sequencesInFlight += prompts.length * s.n;
  let completions;
  try {
    completions = await p.model.generate({
      prompts,
      maxNewTokens: s.maxNewTokens,
      temperature: s.temperature,
      topP: s.topP,
      topK: s.topK,
      stopTokens: stopTokens(s, p.tokenizer),
      seed: s.seed,
      n: s.n,
    });
  } finally {
    policy.sequencesInFlight -= prompts.length * s.n;
  }
  return {
    results: prompts.map((_, i) => ({
      completions: completions.slice(i * s.n, (i + 1) * s.n).map((c) => toCompletion(c, p.tokenizer, s.maxNewTokens, s.stopStrings)),
    })),
    policyVersion: p.version,
    checkpointId: p.manifest.id,
  };
}
