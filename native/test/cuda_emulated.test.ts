// The CUDA backend's own sources run on this machine's CPU through the emulator in
// dev/cuda/emu (a block's threads as fibers, warp shuffles and mma.sync from the PTX layouts):
// the emulator's self-test, the CUDA model against the CPU backend (log-probs, gradients,
// AdamW, continuous-batching generation, LoRA/DoRA, fp32 and bf16, Qwen3's head norms), every
// shared fixture (../shared/fixtures and next/) on the CUDA backend in fp32 mode, and the
// kernel harnesses. Needs no GPU and no CUDA toolkit; it is what keeps the kernels checked where
// no GPU is. Objects are kept in native/build/emu, so a second run rebuilds only what changed.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { engineConfig } from '@temper/native';

import { fixtureNames, fixturesDir } from './helpers';

const native = path.resolve(__dirname, '..');
const out = path.join(native, 'build', 'emu');

/** Each fixture with the engine config lib/config.ts derives from it, for emu_parity. */
function fixtureList(): string {
  const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const list = fixtureNames().map((name) => {
    const dir = path.join(fixturesDir, name);
    const peft = path.join(dir, 'adapter_config.json');
    const a = fs.existsSync(peft) ? read(peft) : undefined;
    return {
      dir,
      config: engineConfig(read(path.join(dir, 'config.json'))),
      adapter: a && { r: a.r, alpha: a.lora_alpha, useRslora: a.use_rslora === true, useDora: a.use_dora === true, targetModules: a.target_modules },
    };
  });
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, 'fixtures.json');
  fs.writeFileSync(file, JSON.stringify(list));
  return file;
}

describe('CUDA backend, emulated on the CPU', () => {
  it('matches the CPU backend and the fixtures, and every kernel harness passes', () => {
    const run = spawnSync('bash', [path.join(native, 'dev', 'cuda', 'emu', 'build.sh'), out, 'all'], {
      encoding: 'utf8',
      env: { ...process.env, EMU_FIXTURES: fixtureList() },
      timeout: 15 * 60_000,
      maxBuffer: 64 << 20,
    });
    const output = `${run.stdout}${run.stderr}`;
    if (run.status !== 0) throw new Error(`the emulated CUDA checks failed (exit ${run.status ?? run.signal}):\n${output.slice(-20000)}`);
    expect(output).toMatch(/emulated parity: all passed/);
    expect(output).not.toMatch(/\bFAIL/);
    for (const name of fixtureNames()) expect(output).toContain(`fixture ${path.join(fixturesDir, name)}\n`);
  }, 16 * 60_000);
});
