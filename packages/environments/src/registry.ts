// From a spec's environment section (plain data) to a maker of environments, one per
// conversation. The learner calls it once when a run starts, so a misspelt name, tool or option
// fails the run with the field named; the generator calls it for each rollout request.
import { builtinEnvironments } from './builtin';
import type { Options } from './options';
import { toolCallFormats, type ToolCallFormat } from './tool-calls';
import { resolveTools } from './tools';
import type { Environment } from './types';

export interface EnvironmentSettings {
  name: string;
  options?: Options;
  tools?: readonly string[];
  toolFormat?: string;
}

export const DEFAULT_MAX_TURNS = 8;
export const DEFAULT_STEP_TIMEOUT_MS = 10_000;

/** Whether `name` names a user's module rather than a built-in environment. */
export function isUserModule(name: string): boolean {
  return /\.js$/.test(name);
}

/** A maker of built-in environments; errors name the field under `field` (e.g. "stages[1].grpo.environment"). */
export function builtinEnvironment(s: EnvironmentSettings, field: string): () => Environment {
  const factory = builtinEnvironments[s.name];
  if (!factory) {
    throw new Error(`${field}.name: unknown environment "${s.name}" (built-in: ${Object.keys(builtinEnvironments).join(', ')}; or a user's .js module)`);
  }
  return factory.prepare(s.options ?? {}, resolveTools(s.tools ?? [], `${field}.tools`), `${field}.options`);
}

/** The spec's tool format, checked ("" or absent: undefined, i.e. by tokenizer). */
export function checkToolFormat(format: string | undefined, field: string): ToolCallFormat | undefined {
  if (!format) return undefined;
  if (!toolCallFormats.includes(format as ToolCallFormat)) throw new Error(`${field}.tool_format: expected one of ${toolCallFormats.join(', ')}, got "${format}"`);
  return format as ToolCallFormat;
}
