// Random initialisation: the bulk, parallel normal draws (src/model/normals.cc) give exactly the
// values the one-at-a-time std::log / std::cos code gave, so a seed still means one model.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Model, MODEL_PRESETS } from '@temper/native';

const native = path.resolve(__dirname, '..');

describe('random initialisation', () => {
  it('draws every normal bit for bit as Rng::normal does (normals_host.cc, built as the engine is)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-normals-'));
    const out = path.join(dir, 'normals_host');
    const cxx = process.env.CXX ?? 'g++';
    // The engine's own flags (binding.gyp), so the approximations are vectorised as they are there.
    const build = spawnSync(
      cxx,
      ['-std=c++17', '-O3', `-march=${process.env.TEMPER_MARCH ?? 'native'}`, '-Wall', '-Wextra', '-Werror', '-pthread',
        '-I', path.join(native, 'src'), path.join(__dirname, 'normals_host.cc'),
        path.join(native, 'src', 'model', 'normals.cc'), '-o', out],
      { encoding: 'utf8' },
    );
    if (build.status !== 0) throw new Error(`${cxx} failed:\n${build.stderr}`);
    const run = spawnSync(out, [], { encoding: 'utf8', timeout: 120_000 });
    if (run.status !== 0) throw new Error(`normals_host failed (${run.status}):\n${run.stdout}${run.stderr}`);
    expect(run.stdout).toMatch(/all passed/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  // sha256 over every base weight (sorted by name) of a 3-layer model in the Qwen2.5-0.5B shape
  // with a 32k vocabulary (73M values), as the serial code before the bulk draws made them.
  const serialHashes: Record<number, string> = {
    1: '51411362eb5a6b1ce2868158629f0ba5faf06e3517e9c889b4eed6f977639bcf',
    12345: 'bc9988828853e756f0e5747ca39e11e8fbeccdf9db1003bdd98d8cd89c7e9743',
  };
  it.each(Object.keys(serialHashes).map(Number))('seed %d makes the same weights as before', async (seed) => {
    const config = { ...MODEL_PRESETS['qwen2.5-0.5b'].config, vocab_size: 32000, num_hidden_layers: 3 };
    const model = await Model.create(config, { seed, threads: 2 });
    const weights = await model.weights('base');
    const hash = crypto.createHash('sha256');
    for (const name of Object.keys(weights).sort()) {
      const w = weights[name];
      hash.update(name);
      hash.update(Buffer.from(w.buffer, w.byteOffset, w.byteLength));
    }
    expect(hash.digest('hex')).toBe(serialHashes[seed]);
  }, 120_000);
});
