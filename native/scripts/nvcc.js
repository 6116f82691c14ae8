#!/usr/bin/env node
// Compiles one .cu file for the addon (called by binding.gyp's nvcc rule).
// One place for the flags, so the gyp rule stays a single line.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const [cudaHome, archList, input, output] = process.argv.slice(2);
const gencode = archList
  .split(/\s+/)
  .filter(Boolean)
  .flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
const args = [
  '-c', input, '-o', output,
  '-std=c++17', '-O3', '--compiler-options', '-fPIC,-Wall,-Wextra',
  // Warnings are errors here so CI (which compiles but cannot run the kernels) keeps them clean.
  '-Werror', 'all-warnings',
  '-I', path.resolve(__dirname, '..', 'src'),
  ...gencode,
];
const nvcc = path.join(cudaHome, 'bin', 'nvcc');
const r = spawnSync(nvcc, args, { stdio: 'inherit' });
if (r.error) {
  console.error(`@temper/native: could not run ${nvcc}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
