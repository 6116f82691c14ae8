// Which environment a rollout request's conversations talk to: a built-in one, or one of the
// embedding's own (WorkerOptions.environments). A spec that names none of them, or options
// the environment refuses, is INVALID_ARGUMENT with the field named, so the request is
// terminated instead of retried.
import { builtinEnvironment, builtinEnvironments, checkToolFormat, type Environment, type EnvironmentFactory, resolveTools } from '@temper/environments';
import type { EnvironmentSpec } from '@temper/proto';
import { invalidArgument } from './errors';

export type EnvironmentFactories = Readonly<Record<string, EnvironmentFactory>>;

export function environmentMaker(spec: EnvironmentSpec, extra: EnvironmentFactories = {}): () => Environment {
  try {
    checkToolFormat(spec.toolFormat, 'environment');
    const own = extra[spec.name];
    if (own && !builtinEnvironments[spec.name]) return own.prepare(spec.options ?? {}, resolveTools(spec.tools, 'environment.tools'), 'environment.options');
    return builtinEnvironment({ name: spec.name, options: spec.options ?? {}, tools: spec.tools }, 'environment');
  } catch (err) {
    const m = /^([\w.[\]]+): (.*)$/s.exec((err as Error).message);
    throw m ? invalidArgument(m[1], m[2]) : invalidArgument('environment', (err as Error).message);
  }
}
