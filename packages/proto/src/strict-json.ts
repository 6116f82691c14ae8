// Reading user-written documents (YAML run specs, JSON requests) into proto messages
// strictly: every problem is reported with its path ("stages[1].grpo.group_size: expected an
// integer >= 0, got \"eight\""), where ts-proto's fromJSON would silently drop or coerce.
// The shape comes from the proto descriptors themselves, so there is one source of truth.
import { createFileRegistry, DescEnum, DescField, DescMessage, fromBinary, ScalarType } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import * as fs from 'node:fs';
import * as path from 'node:path';

export class DocumentError extends Error {
  constructor(public readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'DocumentError';
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

let registry: ReturnType<typeof createFileRegistry> | undefined;

function messageDesc(typeName: string): DescMessage {
  registry ??= createFileRegistry(
    fromBinary(FileDescriptorSetSchema, fs.readFileSync(path.join(__dirname, '..', 'descriptor', 'temper.binpb'))),
  );
  const desc = registry.getMessage(typeName);
  if (!desc) throw new Error(`unknown message type ${typeName}`);
  return desc;
}

/**
 * Checks `doc` against message `typeName` and returns it with enum values in their full
 * proto names (users may write "cosine" for SCHEDULE_KIND_COSINE), ready for ts-proto's
 * fromJSON. Throws a DocumentError listing every problem with its path.
 */
export function checkDocument(typeName: string, doc: unknown, root = ''): Record<string, Json> {
  const problems: string[] = [];
  const out = checkMessage(messageDesc(typeName), doc, root, problems);
  if (problems.length) throw new DocumentError(problems);
  return out as Record<string, Json>;
}

const freeform = new Set(['google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue']);

function checkMessage(desc: DescMessage, value: unknown, at: string, problems: string[]): Json {
  if (freeform.has(desc.typeName)) return value as Json;
  if (desc.typeName === 'google.protobuf.Timestamp') {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) problems.push(`${at || '(root)'}: expected an RFC 3339 time`);
    return value as Json;
  }
  if (!isPlainObject(value)) {
    problems.push(`${at || '(root)'}: expected a mapping with fields of ${desc.name}, got ${describe(value)}`);
    return null;
  }
  const out: Record<string, Json> = {};
  const oneofSeen = new Map<string, string>();
  for (const [key, v] of Object.entries(value)) {
    const here = at ? `${at}.${key}` : key;
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    if (!field) {
      problems.push(`${here}: unknown field of ${desc.name} (known: ${desc.fields.map((f) => f.name).join(', ')})`);
      continue;
    }
    if (v === null || v === undefined) continue; // "key:" with nothing after it in YAML: unset
    if (field.oneof) {
      const other = oneofSeen.get(field.oneof.name);
      if (other) problems.push(`${here}: only one of ${field.oneof.fields.map((f) => f.name).join(' / ')} may be set (${other} is too)`);
      oneofSeen.set(field.oneof.name, key);
    }
    out[key] = checkField(field, v, here, problems);
  }
  return out;
}

function checkField(field: DescField, v: unknown, at: string, problems: string[]): Json {
  switch (field.fieldKind) {
    case 'scalar':
      return checkScalar(field.scalar, v, at, problems);
    case 'enum':
      return checkEnum(field.enum, v, at, problems);
    case 'message':
      return checkMessage(field.message, v, at, problems);
    case 'list': {
      if (!Array.isArray(v)) {
        problems.push(`${at}: expected a list, got ${describe(v)}`);
        return null;
      }
      return v.map((item, i) => {
        const here = `${at}[${i}]`;
        if (field.listKind === 'scalar') return checkScalar(field.scalar, item, here, problems);
        if (field.listKind === 'enum') return checkEnum(field.enum, item, here, problems);
        return checkMessage(field.message, item, here, problems);
      });
    }
    case 'map': {
      if (!isPlainObject(v)) {
        problems.push(`${at}: expected a mapping, got ${describe(v)}`);
        return null;
      }
      const out: Record<string, Json> = {};
      for (const [k, item] of Object.entries(v)) {
        const here = `${at}.${k}`;
        if (field.mapKey !== ScalarType.STRING && !/^-?\d+$/.test(k)) problems.push(`${here}: map key must be an integer`);
        out[k] =
          field.mapKind === 'scalar'
            ? checkScalar(field.scalar, item, here, problems)
            : field.mapKind === 'enum'
              ? checkEnum(field.enum, item, here, problems)
              : checkMessage(field.message, item, here, problems);
      }
      return out;
    }
  }
}

const integerRanges: Partial<Record<ScalarType, [number, number]>> = {
  [ScalarType.INT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SINT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SFIXED32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.UINT32]: [0, 2 ** 32 - 1],
  [ScalarType.FIXED32]: [0, 2 ** 32 - 1],
  [ScalarType.INT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SINT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SFIXED64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.UINT64]: [0, Number.MAX_SAFE_INTEGER],
  [ScalarType.FIXED64]: [0, Number.MAX_SAFE_INTEGER],
};

function checkScalar(type: ScalarType, v: unknown, at: string, problems: string[]): Json {
  const range = integerRanges[type];
  if (range) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      problems.push(`${at}: expected an integer${range[0] === 0 ? ' >= 0' : ''}, got ${describe(v)}`);
    }
  } else if (type === ScalarType.DOUBLE || type === ScalarType.FLOAT) {
    if (typeof v !== 'number' || !Number.isFinite(v)) problems.push(`${at}: expected a number, got ${describe(v)}`);
  } else if (type === ScalarType.BOOL) {
    if (typeof v !== 'boolean') problems.push(`${at}: expected true or false, got ${describe(v)}`);
  } else if (typeof v !== 'string') {
    problems.push(`${at}: expected a string, got ${describe(v)}`);
  }
  return v as Json;
}

// Accepts the full value name, the name without the enum's prefix in any case
// ("cosine" for SCHEDULE_KIND_COSINE), or the number; returns the full name.
function checkEnum(e: DescEnum, v: unknown, at: string, problems: string[]): Json {
  const prefix = e.sharedPrefix ? `${e.sharedPrefix.toUpperCase()}` : '';
  const names = e.values.filter((x) => x.number !== 0).map((x) => x.name);
  const short = (name: string) => (prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name).toLowerCase();
  const found =
    typeof v === 'number'
      ? e.values.find((x) => x.number === v)
      : typeof v === 'string'
        ? e.values.find((x) => x.name === v || short(x.name) === v.toLowerCase())
        : undefined;
  if (!found) {
    problems.push(`${at}: expected one of ${names.map(short).join(', ')}, got ${describe(v)}`);
    return null;
  }
  return found.name;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}
