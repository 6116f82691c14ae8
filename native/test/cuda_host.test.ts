// The backends' host-side logic (GEMM tiling, bf16 rounding, KV-cache slots, the scratch-block
// cache, the continuous-batching scheduler): cuda_host.cc built with the system C++ compiler and
// run. It needs no GPU and no CUDA toolkit, so it runs everywhere the CPU engine builds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const native = path.resolve(__dirname, '..');

describe('CUDA backend, host side', () => {
  it('plans tiles and slots, caches blocks, rounds to bf16 and schedules generation correctly', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'temper-cuda-host-')), 'cuda_host');
    const cxx = process.env.CXX ?? 'g++';
    const build = spawnSync(
      cxx,
      ['-std=c++17', '-O1', '-Wall', '-Wextra', '-Werror', '-I', path.join(native, 'src'),
        path.join(__dirname, 'cuda_host.cc'), path.join(native, 'src', 'model', 'scheduler.cc'),
        path.join(native, 'src', 'backend', 'block_cache.cc'), '-o', out],
      { encoding: 'utf8' },
    );
    if (build.status !== 0) throw new Error(`${cxx} failed:\n${build.stderr}`);
    const run = spawnSync(out, [], { encoding: 'utf8', timeout: 60_000 });
    if (run.status !== 0) throw new Error(`cuda_host failed (${run.status}):\n${run.stdout}${run.stderr}`);
    expect(run.stdout).toMatch(/all passed/);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }, 120_000);
});
