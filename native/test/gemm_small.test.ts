// The decode-step product kernels: gemm_small.cc (next to this file) built with the system C++
// compiler and the engine's flags around the engine's own sources, then run. It checks each kernel
// (fp32, bf16 widened, bf16 vdpbf16ps where the CPU has it) against a double reference at R = 1..64,
// per-row bits independent of R, the other rows and the column split, the same bits from x rows
// on and off 64-byte lines, and the pooled dispatch.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const native = path.resolve(__dirname, '..');
const cpu = path.join(native, 'src', 'cpu');

describe('small-M product kernels (gemm_small.cc)', () => {
  it('match a double reference and give each row the same bits whatever the batch', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'temper-gemm-small-')), 'gemm_small');
    const cxx = process.env.CXX ?? 'g++';
    const build = spawnSync(
      cxx,
      ['-std=c++17', '-O2', '-march=native', '-Wall', '-Wextra', '-Werror', '-I', path.join(native, 'src'),
        path.join(__dirname, 'gemm_small.cc'), path.join(cpu, 'gemm_small.cc'), path.join(cpu, 'matmul.cc'),
        path.join(cpu, 'matmul_bf16.cc'), path.join(cpu, 'rmsnorm.cc'), path.join(cpu, 'threadpool.cc'),
        '-lopenblas', '-pthread', '-o', out],
      { encoding: 'utf8' },
    );
    if (build.status !== 0) throw new Error(`${cxx} failed:\n${build.stderr}`);
    const run = spawnSync(out, [], { encoding: 'utf8', timeout: 120_000 });
    if (run.status !== 0) throw new Error(`gemm_small failed (${run.status}):\n${run.stdout}${run.stderr}`);
    expect(run.stdout).toMatch(/all passed/);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }, 240_000);
});
