// Which environment a rollout request's conversations talk to: a built-in one, one of the
// embedding's own (WorkerOptions.environments), or a user's module (its source in the request)
// run in the sandbox. A spec that names none of them, or options the environment refuses, is
// INVALID_ARGUMENT with the field named, so the request is terminated instead of retried.
import {
  builtinEnvironment,
  builtinEnvironments,
  checkToolFormat,
  DEFAULT_SANDBOX_MEMORY_MB,
  DEFAULT_STEP_TIMEOUT_MS,
  type Environment,
  type EnvironmentFactory,
  EnvironmentSandbox,
  isUserModule,
  resolveTools,
} from '@temper/environments';
import type { EnvironmentSpec } from '@temper/proto';
import { invalidArgument } from './errors';

export type EnvironmentFactories = Readonly<Record<string, EnvironmentFactory>>;

export function environmentMaker(spec: EnvironmentSpec, sandbox: EnvironmentSandbox, extra: EnvironmentFactories = {}): () => Environment {
  try {
    checkToolFormat(spec.toolFormat, 'environment');
    if (isUserModule(spec.name) || spec.source) {
      if (!spec.source) throw new Error(`environment.source: empty; a user's module (${spec.name}) comes with its source, which the learner reads`);
      const limits = { memoryBytes: (spec.memoryMb || DEFAULT_SANDBOX_MEMORY_MB) * 1024 * 1024, timeoutMs: spec.stepTimeoutMs || DEFAULT_STEP_TIMEOUT_MS };
      return () => sandbox.environment(spec.source, limits);
    }
    const own = extra[spec.name];
    if (own && !builtinEnvironments[spec.name]) return own.prepare(spec.options ?? {}, resolveTools(spec.tools, 'environment.tools'), 'environment.options');
    return builtinEnvironment({ name: spec.name, options: spec.options ?? {}, tools: spec.tools }, 'environment');
  } catch (err) {
    const m = /^([\w.[\]]+): (.*)$/s.exec((err as Error).message);
    throw m ? invalidArgument(m[1], m[2]) : invalidArgument('environment', (err as Error).message);
  }
}
