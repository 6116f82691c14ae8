// What a run may read. A run spec names files (prompt and data sources, datasets, a tokenizer)
// and the learner opens them with its own rights, so a client that reaches the learner's port
// could otherwise read any file the learner can. Every path a spec names must resolve (links
// followed: realpath) to a place inside one of the configured data roots
// (TEMPER_DATA_ROOTS, colon-separated); anything else is refused with the spec field named.
// Checkpoints come from the store by id or tag and stay allowed; a model directory (model.path)
// is files like any other.
import { datasetFiles } from '@temper/data';
import { isUserModule } from '@temper/environments';
import type { RunSpec } from '@temper/proto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mapDataSources, SpecError } from './spec';

export const DATA_ROOTS_ENV = 'TEMPER_DATA_ROOTS';

export class DataRoots {
  /** The roots as configured (relative paths of a spec are taken from the first). */
  readonly roots: readonly string[];
  private readonly real: readonly string[];

  constructor(roots: readonly string[]) {
    this.roots = roots.map((r) => path.resolve(r));
    // A root that does not exist confines nothing; a root that is a link means where it points.
    this.real = this.roots.map((r) => {
      try {
        return fs.realpathSync(r);
      } catch (err) {
        throw new Error(`${DATA_ROOTS_ENV}: ${r}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message}`);
      }
    });
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): DataRoots {
    return new DataRoots((env[DATA_ROOTS_ENV] ?? '').split(':').filter((r) => r.length > 0));
  }

  /** The real path of `p` (a spec's value at `field`), or a SpecError saying why it may not be read. */
  resolve(p: string, field: string): string {
    const refuse = (why: string) => new SpecError([`${field}: ${JSON.stringify(p)} ${why}`]);
    if (p.includes('\0')) throw refuse('contains a NUL byte');
    if (this.real.length === 0) throw refuse(`names a file, and this learner reads none (no data roots: set ${DATA_ROOTS_ENV})`);
    const wanted = path.resolve(this.roots[0], p);
    const outside = `is outside the data roots (${this.roots.join(', ')})`;
    // Refused before touching the file system, so nothing is learnt about what exists elsewhere.
    if (!this.roots.some((r) => inside(r, wanted)) && !this.real.some((r) => inside(r, wanted))) throw refuse(outside);
    let real: string;
    try {
      real = fs.realpathSync(wanted);
    } catch (err) {
      throw refuse((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
    // A link inside a root that points out of every root is outside too.
    if (!this.real.some((r) => inside(r, real))) throw refuse(outside);
    return real;
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The spec with every file path it names replaced by its real path inside the data roots; a
 * SpecError lists each path that is not (with its field).
 */
export function confineSpec(spec: RunSpec, roots: DataRoots): RunSpec {
  const problems: string[] = [];
  /** The real path, or undefined (and the problem noted). */
  const resolve = (p: string, field: string): string | undefined => {
    try {
      return roots.resolve(p, field);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };
  // A dataset directory is read by listing it: every data file in it (links followed) must be
  // inside the roots too, whichever split is read later.
  const confineDataset = (p: string, field: string): string | undefined => {
    const real = resolve(p, field);
    if (real !== undefined && fs.statSync(real).isDirectory()) {
      for (const file of datasetFiles(real)) resolve(path.join(real, file), `${field} (its file ${file})`);
    }
    return real;
  };
  // A model directory is stored whole: everything in it (links followed) must be inside too.
  const confineModelDir = (p: string, field: string): string | undefined => {
    const real = resolve(p, field);
    if (real !== undefined && !fs.statSync(real).isDirectory()) problems.push(`${field}: ${JSON.stringify(p)} is not a directory (a Hugging Face model directory)`);
    else if (real !== undefined) for (const entry of fs.readdirSync(real, { recursive: true, encoding: 'utf8' })) resolve(path.join(real, entry), `${field} (its file ${entry})`);
    return real;
  };
  const tokenizer = spec.model?.tokenizer ?? '';
  const modelPath = spec.model?.path ?? '';
  const model = spec.model && {
    ...spec.model,
    tokenizer: ['', 'bytes', 'byte'].includes(tokenizer) ? tokenizer : (resolve(tokenizer, 'model.tokenizer') ?? tokenizer),
    path: modelPath && (confineModelDir(modelPath, 'model.path') ?? modelPath),
  };
  const confined = mapDataSources({ ...spec, model }, (s, field) => ({
    ...s,
    uri: s.uri && !s.uri.startsWith('builtin:') ? (resolve(s.uri, `${field}.uri`) ?? s.uri) : s.uri,
    dataset: s.dataset && { ...s.dataset, path: confineDataset(s.dataset.path, `${field}.dataset.path`) ?? s.dataset.path },
  }));
  // A user's environment module is read here, inside the roots, and travels to the generators
  // as source (they read no files); it runs there in the sandbox.
  const stages = confined.stages.map((stage, i) => {
    if (stage.kind?.$case !== 'grpo' || !stage.kind.value.environment || !isUserModule(stage.kind.value.environment.name)) return stage;
    const env = stage.kind.value.environment;
    const field = `stages[${i}].grpo.environment.name`;
    const real = resolve(env.name, field);
    if (real === undefined) return stage;
    const size = fs.statSync(real).size;
    if (size > MAX_ENVIRONMENT_SOURCE_BYTES) {
      problems.push(`${field}: ${JSON.stringify(env.name)} is ${size} bytes; an environment module may have ${MAX_ENVIRONMENT_SOURCE_BYTES}`);
      return stage;
    }
    return { ...stage, kind: { $case: 'grpo' as const, value: { ...stage.kind.value, environment: { ...env, name: real, source: fs.readFileSync(real, 'utf8') } } } };
  });
  if (problems.length) throw new SpecError(problems);
  return { ...confined, stages };
}

/** Largest user environment module a run may name. */
export const MAX_ENVIRONMENT_SOURCE_BYTES = 1 << 20;
