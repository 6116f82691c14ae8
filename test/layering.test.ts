// The layers say what they are, and this keeps them so. A workspace is a library (native/,
// packages/*), a service (services/*) or an application (apps/*):
//
// - a library depends on no service or application, in its package.json or its imports;
// - a service's code imports no other service and no application: it talks to the
//   checkpoint store through @temper/checkpoint-client (its tests may run a real store);
// - no service test imports or runs the command line's sources;
// - nothing imports another workspace's files by a deep path (@temper/learner/dist/...);
// - only the checkpoint store publishes CheckpointCommitted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..');

type Kind = 'library' | 'service' | 'application';

interface Workspace {
  dir: string;
  name: string;
  kind: Kind;
  pkg: { dependencies?: Record<string, string>; devDependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
}

function kindOf(dir: string): Kind {
  if (dir.startsWith('services/')) return 'service';
  if (dir.startsWith('apps/')) return 'application';
  if (dir === 'native' || dir.startsWith('packages/')) return 'library';
  throw new Error(`workspace ${dir} is in no known layer (native, packages/, services/, apps/)`);
}

const workspaces: Workspace[] = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).workspaces as string[]).map((dir) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, dir, 'package.json'), 'utf8'));
  return { dir, name: pkg.name, kind: kindOf(dir), pkg };
});
const byName = new Map(workspaces.map((w) => [w.name, w]));

/** The workspace a file belongs to, by its path from the root (undefined: test/, scripts, ...). */
function workspaceOfPath(rel: string): Workspace | undefined {
  return workspaces.find((w) => rel === w.dir || rel.startsWith(`${w.dir}/`));
}

function tsFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => !f.split(path.sep).includes('node_modules') && !f.split(path.sep).includes('dist'));
}

interface Import {
  /** The importing file, from the root. */
  file: string;
  specifier: string;
  /** The workspace imported, when it is one of ours. */
  target?: Workspace;
  /** @temper/<name>/<more>: a path inside another workspace. */
  deep: boolean;
}

function importsOf(file: string): Import[] {
  const rel = path.relative(root, file).split(path.sep).join('/');
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map(({ fileName: specifier }) => {
    const scoped = /^(@temper\/[^/]+)(\/.*)?$/.exec(specifier);
    if (scoped) return { file: rel, specifier, target: byName.get(scoped[1]), deep: scoped[2] !== undefined };
    if (specifier.startsWith('.')) {
      const to = path.relative(root, path.resolve(path.dirname(file), specifier)).split(path.sep).join('/');
      return { file: rel, specifier, target: workspaceOfPath(to), deep: false };
    }
    return { file: rel, specifier, deep: false };
  });
}

/** Imports of each workspace's own code (src/, or lib/ for the engine) and of its tests. */
const sources = new Map(workspaces.map((w) => [w, ['src', 'lib'].flatMap((d) => tsFiles(path.join(root, w.dir, d))).flatMap(importsOf)]));
const tests = new Map(workspaces.map((w) => [w, tsFiles(path.join(root, w.dir, 'test')).flatMap(importsOf)]));

const describeImport = (i: Import) => `${i.file} imports ${i.specifier}`;

describe('the layers', () => {
  it('every workspace is a library, a service or an application', () => {
    expect(workspaces.map((w) => w.kind)).toContain('application');
    expect(workspaces.filter((w) => w.kind === 'service').map((w) => w.dir).sort()).toEqual(['services/checkpoint-store', 'services/generator', 'services/learner', 'services/scorer']);
    expect(byName.get('@temper/cli')?.kind).toBe('application');
  });

  it('no library depends on a service or an application', () => {
    const bad: string[] = [];
    for (const w of workspaces.filter((x) => x.kind === 'library')) {
      for (const field of ['dependencies', 'devDependencies', 'peerDependencies'] as const) {
        for (const dep of Object.keys(w.pkg[field] ?? {})) {
          const target = byName.get(dep);
          if (target && target.kind !== 'library') bad.push(`${w.dir}/package.json ${field}: ${dep} (a ${target.kind})`);
        }
      }
      for (const i of [...sources.get(w)!, ...tests.get(w)!]) {
        if (i.target && i.target.kind !== 'library') bad.push(`${describeImport(i)} (a ${i.target.kind})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('a service depends on libraries only; it reaches the checkpoint store through its client', () => {
    const bad: string[] = [];
    for (const w of workspaces.filter((x) => x.kind === 'service')) {
      for (const dep of Object.keys(w.pkg.dependencies ?? {})) {
        const target = byName.get(dep);
        if (target && target.kind !== 'library') bad.push(`${w.dir}/package.json dependencies: ${dep} (a ${target.kind})`);
      }
      for (const dep of Object.keys(w.pkg.devDependencies ?? {})) {
        if (byName.get(dep)?.kind === 'application') bad.push(`${w.dir}/package.json devDependencies: ${dep} (an application)`);
      }
      for (const i of sources.get(w)!) {
        if (i.target && i.target !== w && i.target.kind !== 'library') bad.push(`${describeImport(i)} (a ${i.target.kind})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('no service test imports or runs the command line', () => {
    const cli = byName.get('@temper/cli')!;
    const bad: string[] = [];
    for (const w of workspaces.filter((x) => x.kind === 'service')) {
      for (const i of tests.get(w)!) if (i.target === cli || i.target?.kind === 'application') bad.push(describeImport(i));
      for (const file of tsFiles(path.join(root, w.dir, 'test'))) {
        // Running it: a path into its folder, however it is joined.
        const text = fs.readFileSync(file, 'utf8');
        if (text.includes(`${cli.dir}/`) || text.includes(`'${cli.dir.split('/').join("', '")}'`)) bad.push(`${path.relative(root, file)} names files of ${cli.dir}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("nothing reaches into another workspace's files by a deep import", () => {
    const all = [...sources.values(), ...tests.values()].flat();
    for (const file of tsFiles(path.join(root, 'test'))) all.push(...importsOf(file));
    expect(all.filter((i) => i.deep).map(describeImport)).toEqual([]);
  });

  it('only the checkpoint store publishes CheckpointCommitted', () => {
    const store = byName.get('@temper/checkpoint-store')!;
    const bad: string[] = [];
    for (const w of workspaces.filter((x) => x !== store)) {
      for (const file of ['src', 'lib'].flatMap((d) => tsFiles(path.join(root, w.dir, d)))) {
        const text = fs.readFileSync(file, 'utf8');
        if (/\bpublishCommitted\b/.test(text) || /publish\w*\([^;]*subjects\.checkpointCommitted\(/.test(text) || /publish\w*\([^;]*\bCheckpointCommitted\b/.test(text)) {
          bad.push(path.relative(root, file));
        }
      }
    }
    expect(bad).toEqual([]);
  });
});
