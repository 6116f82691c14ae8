// The engine's build script explains what is missing instead of failing deep in node-gyp.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const script = path.join(__dirname, '..', 'native', 'scripts', 'build.js');

function build(env: Record<string, string>) {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('native build script', () => {
  it('names OpenBLAS and the package to install when it is missing', () => {
    const r = build({ OPENBLAS_HOME: path.join(__dirname, 'no-such-openblas') });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/OpenBLAS development files were not found \(cblas\.h is missing/);
    expect(r.stderr).toMatch(/apt-get install -y libopenblas-dev/);
  });

  it('rejects an unknown TEMPER_CUDA mode', () => {
    const r = build({ TEMPER_CUDA: 'sometimes' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/TEMPER_CUDA must be auto, on or off \(got "sometimes"\)/);
  });
});
