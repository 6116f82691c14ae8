// Validating a component's options against what it declares: unknown names and wrong
// types are errors that name the option, missing ones take their defaults.
import { RewardSpecError } from './errors';
import { OptionSpec, OptionValue } from './types';

export function resolveOptions(
  declared: Record<string, OptionSpec>,
  given: Record<string, unknown> | undefined,
  path: string,
): Record<string, OptionValue> {
  const out: Record<string, OptionValue> = {};
  for (const key of Object.keys(given ?? {})) {
    if (!(key in declared)) {
      const known = Object.keys(declared);
      throw new RewardSpecError(`${path}.${key}`, `unknown option${known.length ? ` (known: ${known.join(', ')})` : ''}`);
    }
  }
  for (const [key, spec] of Object.entries(declared)) {
    const value = given?.[key];
    out[key] = value === undefined || value === null ? spec.default : checkValue(spec, value, `${path}.${key}`);
  }
  return out;
}

function checkValue(spec: OptionSpec, value: unknown, path: string): OptionValue {
  switch (spec.type) {
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new RewardSpecError(path, `expected a number, got ${describe(value)}`);
      if (spec.min !== undefined && value < spec.min) throw new RewardSpecError(path, `must be at least ${spec.min}`);
      if (spec.max !== undefined && value > spec.max) throw new RewardSpecError(path, `must be at most ${spec.max}`);
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw new RewardSpecError(path, `expected true or false, got ${describe(value)}`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new RewardSpecError(path, `expected a string, got ${describe(value)}`);
      checkOneOf(spec, value, path);
      return value;
    case 'list': {
      if (!Array.isArray(value)) throw new RewardSpecError(path, `expected a list, got ${describe(value)}`);
      return value.map((v, i) => {
        if (typeof v !== 'string') throw new RewardSpecError(`${path}[${i}]`, `expected a string, got ${describe(v)}`);
        checkOneOf(spec, v, `${path}[${i}]`);
        return v;
      });
    }
  }
}

function checkOneOf(spec: OptionSpec, value: string, path: string): void {
  if (spec.oneOf && !spec.oneOf.includes(value)) throw new RewardSpecError(path, `must be one of ${spec.oneOf.join(', ')}, got "${value}"`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return typeof v === 'object' ? 'an object' : String(v);
}
