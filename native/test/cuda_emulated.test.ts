// The CUDA backend's own sources run on this machine's CPU through the emulator in
// dev/cuda/emu (a block's threads as fibers, warp shuffles and mma.sync from the PTX layouts):
// the emulator's self-test, the CUDA model against the CPU backend (log-probs, gradients,
// AdamW, continuous-batching generation, LoRA/DoRA, fp32 and bf16), and the kernel harnesses.
// Needs no GPU and no CUDA toolkit; it is what keeps the kernels checked where no GPU is.
// Objects are kept in native/build/emu, so a second run rebuilds only what changed.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const native = path.resolve(__dirname, '..');

describe('CUDA backend, emulated on the CPU', () => {
  it('matches the CPU backend, and every kernel harness passes', () => {
    const run = spawnSync('bash', [path.join(native, 'dev', 'cuda', 'emu', 'build.sh'), path.join(native, 'build', 'emu'), 'all'], {
      encoding: 'utf8',
      timeout: 15 * 60_000,
      maxBuffer: 64 << 20,
    });
    const output = `${run.stdout}${run.stderr}`;
    if (run.status !== 0) throw new Error(`the emulated CUDA checks failed (exit ${run.status ?? run.signal}):\n${output.slice(-20000)}`);
    expect(output).toMatch(/emulated parity: all passed/);
    expect(output).not.toMatch(/\bFAIL/);
  }, 16 * 60_000);
});
