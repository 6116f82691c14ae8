// The container images cannot be built here (no Docker engine). What can be checked is checked:
// the Dockerfiles' final stages (base, non-root user, labels, no build tools), that the bake
// file, build script, chart and Dockerfiles agree, and that the run-time tree the final stage
// copies (deploy/stage-runtime.sh, run by the build stage) really starts a service.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { freePort, NatsServer, startNatsServer } from '../../packages/bus/src/nats-server';
import { waitForServing } from '../../packages/service/src/health-client';
import { repoRoot } from './helm-bin';

const read = (p: string) => fs.readFileSync(path.join(repoRoot, p), 'utf8');

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

// Dockerfile stages: FROM lines and the instructions under them (continuations joined).
function stages(dockerfile: string): Stage[] {
  const joined = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: Stage[] = [];
  for (const l of joined) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (from) out.push({ from: from[1], name: from[2], lines: [] });
    else if (out.length) out[out.length - 1].lines.push(l);
  }
  return out;
}

const images = {
  cpu: { file: 'deploy/Dockerfile', runtimeBase: /^node:\$\{NODE_VERSION\}-\$\{DEBIAN\}-slim$/ },
  cuda: { file: 'deploy/Dockerfile.cuda', runtimeBase: /^nvidia\/cuda:\$\{CUDA_VERSION\}-runtime-\$\{UBUNTU\}$/ },
};

describe.each(Object.entries(images))('the %s image', (kind, { file, runtimeBase }) => {
  const text = read(file);
  const all = stages(text);
  const final = all[all.length - 1];
  const build = all.find((s) => s.name === 'build')!;

  it('builds in a separate stage with the CI steps and runs from a slim runtime base', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(final.from).toMatch(runtimeBase);
    const run = build.lines.filter((l) => l.startsWith('RUN')).join('\n');
    expect(run).toMatch(/npm ci/);
    expect(run).toMatch(/npm run build/);
    expect(run).toMatch(/npm prune --omit=dev/);
    expect(run).toContain('deploy/stage-runtime.sh /src /out');
    expect(run).toContain(kind === 'cuda' ? 'TEMPER_CUDA=on' : 'TEMPER_CUDA=off');
    if (kind === 'cuda') expect(build.from).toMatch(/^nvidia\/cuda:\$\{CUDA_VERSION\}-devel-/);
  });

  it('has no compilers or -dev packages in the final stage, and copies only the staged tree', () => {
    const finalText = final.lines.join('\n');
    expect(finalText).not.toMatch(/\b(g\+\+|gcc|make|python3|build-essential|[a-z0-9]+-dev)\b/);
    const copies = final.lines.filter((l) => l.startsWith('COPY'));
    for (const c of copies) expect(c).toMatch(/--from=(build|node)\b/);
    expect(copies.some((c) => /--from=build\b.*\s\/out\s+\/app$/.test(c))).toBe(true);
  });

  it('runs as the non-root user the chart expects, with OCI labels', () => {
    const user = final.lines.filter((l) => l.startsWith('USER')).pop();
    const values = parseYaml(read('helm/temper/values.yaml')) as { podSecurityContext: { runAsUser: number; runAsGroup: number } };
    expect(user).toBe(`USER ${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
    for (const label of ['title', 'description', 'version', 'revision', 'source', 'licenses']) expect(final.lines.join(' ')).toContain(`org.opencontainers.image.${label}=`);
    expect(final.lines).toContain('ENTRYPOINT ["node"]');
  });
});

describe('building all images with one command', () => {
  it('the bake file builds both Dockerfiles with the repositories the chart pulls', () => {
    const bake = read('deploy/docker-bake.hcl');
    const values = parseYaml(read('helm/temper/values.yaml')) as { image: Record<'cpu' | 'cuda', { repository: string }> };
    const registry = /variable "REGISTRY" \{ default = "([^"]+)" \}/.exec(bake)![1];
    for (const [kind, { file }] of Object.entries(images)) {
      const target = new RegExp(`target "${kind}" \\{[^}]*dockerfile = "${file.replace('.', '\\.')}"[^}]*tags = \\["\\$\\{REGISTRY\\}/([a-z-]+):\\$\\{TAG\\}"\\]`, 's').exec(bake);
      expect(target).not.toBeNull();
      expect(`${registry}/${target![1]}`).toBe(values.image[kind as 'cpu' | 'cuda'].repository);
    }
    expect(bake).toMatch(/group "default" \{\s*targets = \["cpu", "cuda"\]/);
  });

  it('build.sh is valid bash and refuses unknown arguments', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile('bash', args, { cwd: repoRoot }, (err, _o, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })),
      );
    expect((await run(['-n', 'deploy/build.sh'])).code).toBe(0);
    expect((await run(['-n', 'deploy/stage-runtime.sh'])).code).toBe(0);
    const bad = await run(['deploy/build.sh', '--nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown argument --nope');
  });

  it('.dockerignore keeps build outputs and local state out of the context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const p of ['**/node_modules', '**/dist', 'native/build', '.git']) expect(ignored).toContain(p);
    // What the build stage needs must not be ignored.
    for (const p of ['scripts', 'proto', 'native', 'packages', 'services', 'apps', 'deploy']) expect(ignored).not.toContain(p);
  });
});

describe('the staged run-time tree', () => {
  const out = path.join(repoRoot, 'test-artifacts', `stage-${process.pid}`);
  let child: ChildProcess | undefined;
  // A nats-server of its own: a scorer's consumer on the rollouts work queue would clash with
  // the consumers other suites make on the shared one.
  let nats: NatsServer | undefined;

  afterAll(async () => {
    child?.kill('SIGKILL');
    await nats?.stop();
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('holds every service and the engine, and a service starts from it and reports SERVING', async () => {
    fs.rmSync(out, { recursive: true, force: true });
    await new Promise<void>((resolve, reject) =>
      execFile('bash', ['deploy/stage-runtime.sh', '.', out], { cwd: repoRoot, env: { ...process.env, STAGE_LINK: '1' } }, (err, _o, stderr) =>
        err ? reject(new Error(`stage-runtime.sh failed: ${stderr}`)) : resolve(),
      ),
    );
    for (const svc of ['generator', 'scorer', 'learner', 'checkpoint-store']) expect(fs.existsSync(path.join(out, 'services', svc, 'dist', 'main.js'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'native', 'build', 'Release', 'temper_engine.node'))).toBe(true);
    // No sources in the staged tree.
    expect(fs.existsSync(path.join(out, 'native', 'src'))).toBe(false);
    expect(fs.existsSync(path.join(out, 'services', 'scorer', 'src'))).toBe(false);

    const address = `127.0.0.1:${await freePort()}`;
    nats = await startNatsServer();
    child = spawn(process.execPath, ['services/scorer/dist/main.js'], {
      cwd: out,
      env: { PATH: process.env.PATH, HOME: out, NATS_URL: nats.url, TEMPER_GRPC_ADDR: address, TEMPER_PLAINTEXT: 'loopback' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    try {
      await waitForServing(address, '', 20000);
    } catch (err) {
      throw new Error(`${String(err)}\nscorer stderr: ${stderr}`);
    }
  }, 60000);
});
