// skaffold.yaml: each profile's images exist as Dockerfiles, and its Helm release renders with
// the values skaffold would pass (image templates filled in as skaffold fills them) into
// objects that are valid and use the images skaffold built.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from './helm-bin';
import { crdApis, offlineChart, render, validate } from './render';

interface Artifact {
  image: string;
  docker: { dockerfile: string };
}
interface Release {
  name: string;
  chartPath: string;
  namespace: string;
  valuesFiles?: string[];
  setValueTemplates?: Record<string, string>;
}
interface Section {
  build?: { artifacts: Artifact[] };
  deploy?: { helm: { releases: Release[] } };
}
interface Skaffold extends Section {
  profiles: (Section & { name: string })[];
  portForward: { resourceType: string; resourceName: string; namespace: string; port: number }[];
}

const config = parseYaml(fs.readFileSync(path.join(repoRoot, 'skaffold.yaml'), 'utf8')) as Skaffold;
const profile = (name: string): Required<Section> => {
  const p = config.profiles.find((x) => x.name === name);
  if (!p) throw new Error(`no profile ${name}`);
  return { build: p.build ?? config.build!, deploy: p.deploy ?? config.deploy! };
};

// What skaffold puts into {{.IMAGE_REPO_<name>}} and {{.IMAGE_TAG_<name>}} (name with non-alphanumerics as _).
function fill(template: string, artifacts: Artifact[]): string {
  return template.replace(/\{\{\.IMAGE_(REPO|TAG)_([A-Za-z0-9_]+)\}\}/g, (_m, what: string, key: string) => {
    const a = artifacts.find((x) => x.image.replace(/[^A-Za-z0-9]/g, '_') === key);
    if (!a) throw new Error(`skaffold.yaml refers to an image "${key}" that no artifact builds`);
    return what === 'REPO' ? `registry.test/${a.image}` : 'sha-1234';
  });
}

let chart: string;
beforeAll(() => {
  chart = offlineChart();
});
afterAll(() => fs.rmSync(chart, { recursive: true, force: true }));

describe.each(['cpu', 'gpu'])('skaffold profile %s', (name) => {
  it('builds from Dockerfiles that exist and deploys a valid release with the built images', async () => {
    const { build, deploy } = profile(name);
    for (const a of build.artifacts) expect(fs.existsSync(path.join(repoRoot, a.docker.dockerfile))).toBe(true);
    const [release] = deploy.helm.releases;
    expect(release.chartPath).toBe('helm/temper');
    const values = (release.valuesFiles ?? []).map((f) => {
      expect(fs.existsSync(path.join(repoRoot, f))).toBe(true);
      return path.relative('helm/temper', f);
    });
    const set = Object.entries(release.setValueTemplates ?? {}).map(([k, v]) => `${k}=${fill(v, build.artifacts)}`);
    const r = await render(chart, { release: release.name, namespace: release.namespace, values, set, extra: crdApis });
    expect((await validate(r.objects)).filter((x) => x.errors.length)).toEqual([]);

    const images = Object.fromEntries(r.all('Deployment').map((d) => [d.metadata.labels?.['app.kubernetes.io/component'], d.spec.template.spec.containers[0].image]));
    if (name === 'cpu') {
      for (const svc of ['generator', 'scorer', 'learner', 'checkpoint-store']) expect(images[svc]).toBe('registry.test/temper:sha-1234');
      expect(r.all('ScaledObject')).toEqual([]);
    } else {
      expect(images).toEqual({ generator: 'registry.test/temper-cuda:sha-1234', learner: 'registry.test/temper-cuda:sha-1234', scorer: 'registry.test/temper:sha-1234', 'checkpoint-store': 'registry.test/temper:sha-1234' });
      expect(r.all('ScaledObject')).toHaveLength(2);
    }
    // The port-forward points at the learner Service this release creates.
    for (const pf of config.portForward) {
      const svc = r.find('Service', pf.resourceName);
      expect(pf.namespace).toBe(release.namespace);
      expect(svc.spec.ports[0].port).toBe(pf.port);
    }
  });
});
