#!/usr/bin/env node
// Builds the engine addon (runs on `npm ci`).
//
//   TEMPER_CUDA=auto|on|off   compile the CUDA backend when nvcc is found (auto, the default),
//                             always (fail without nvcc) or never
//   CUDA_HOME                 where the CUDA toolkit lives (default: nvcc on PATH, /usr/local/cuda)
//   TEMPER_CUDA_ARCHS         SM targets, default "80 90"
//   TEMPER_MARCH              -march for the CPU backend, default "native"
//
// Skips the build when the sources and options have not changed since the last one,
// so `npm ci` and the README's commands stay fast when nothing moved.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

function fail(lines) {
  console.error(['', '@temper/native: cannot build the engine addon.', ...lines, ''].join('\n'));
  process.exit(1);
}

function findOpenBlas() {
  // An explicit OPENBLAS_HOME is the only place looked at, so a wrong one is reported, not bypassed.
  const home = process.env.OPENBLAS_HOME;
  const candidates = home ? [path.join(home, 'include')] : [
    '/usr/include/x86_64-linux-gnu/openblas-pthread',
    '/usr/include/aarch64-linux-gnu/openblas-pthread',
    '/usr/include/x86_64-linux-gnu/openblas-openmp',
    '/usr/include/openblas',
    '/usr/include',
  ].filter(Boolean);
  const include = candidates.find((d) => fs.existsSync(path.join(d, 'cblas.h')));
  const libDirs = home ? [path.join(home, 'lib')] : [
    include && include.replace('/include/', '/lib/'),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
  ].filter(Boolean);
  const lib = libDirs.find((d) => fs.existsSync(path.join(d, 'libopenblas.so')));
  if (!include || !lib) {
    fail([
      `  OpenBLAS development files were not found (${!include ? 'cblas.h' : 'libopenblas.so'} is missing${home ? ` under OPENBLAS_HOME=${home}` : ''}).`,
      '  On Debian or Ubuntu:   sudo apt-get install -y libopenblas-dev',
      '  Elsewhere: install OpenBLAS and set OPENBLAS_HOME to its prefix.',
    ]);
  }
  return { include, lib };
}

function findCuda() {
  const mode = (process.env.TEMPER_CUDA || 'auto').toLowerCase();
  if (!['auto', 'on', 'off'].includes(mode)) fail([`  TEMPER_CUDA must be auto, on or off (got "${mode}").`]);
  if (mode === 'off') return null;
  const homes = [process.env.CUDA_HOME, process.env.CUDA_PATH, nvccOnPath(), '/usr/local/cuda'].filter(Boolean);
  const hasNvcc = (h) => fs.existsSync(path.join(h, 'bin', 'nvcc'));
  const complete = (h) => hasNvcc(h) && fs.existsSync(path.join(h, 'include', 'cuda_runtime.h'));
  const home = homes.find(complete);
  if (!home) {
    const partial = homes.find(hasNvcc);
    const why = partial
      ? `nvcc was found in ${partial} but not cuda_runtime.h next to it; the toolkit is incomplete`
      : 'nvcc was not found (looked at CUDA_HOME, CUDA_PATH, PATH and /usr/local/cuda)';
    if (mode === 'on') fail([`  TEMPER_CUDA=on but ${why}.`, '  Install the CUDA toolkit or set CUDA_HOME; TEMPER_CUDA=off builds the CPU backend alone.']);
    if (partial) console.warn(`@temper/native: ${why}; building without the CUDA backend.`);
    return null;
  }
  return { home, archs: process.env.TEMPER_CUDA_ARCHS || '80 90' };
}

function nvccOnPath() {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, 'nvcc');
    if (dir && fs.existsSync(p)) return path.dirname(path.dirname(fs.realpathSync(p)));
  }
  return null;
}

// node-gyp needs Node's headers; the machine's own (next to the node binary) avoid a download.
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? prefix : null;
}

function sourceDigest(options) {
  const h = crypto.createHash('sha256').update(JSON.stringify(options));
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else h.update(p).update(fs.readFileSync(p));
    }
  };
  walk(path.join(root, 'src'));
  h.update(fs.readFileSync(path.join(root, 'binding.gyp')));
  return h.digest('hex');
}

const blas = findOpenBlas();
const cuda = findCuda();
const options = {
  openblas_include: blas.include,
  openblas_lib: blas.lib,
  temper_cuda: cuda ? 1 : 0,
  cuda_home: cuda ? cuda.home : '',
  cuda_archs: cuda ? cuda.archs : '',
  temper_march: process.env.TEMPER_MARCH || 'native',
};
const stampFile = path.join(root, 'build', 'temper-build.json');
const digest = sourceDigest(options);
const addon = path.join(root, 'build', 'Release', 'temper_engine.node');
if (!force && fs.existsSync(addon) && fs.existsSync(stampFile)) {
  const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
  if (stamp.digest === digest) {
    console.log('@temper/native: up to date');
    process.exit(0);
  }
}

console.log(`@temper/native: building (OpenBLAS ${blas.lib}; CUDA ${cuda ? `${cuda.home}, sm_${cuda.archs.split(' ').join('/sm_')}` : 'off'})`);
const args = [
  require.resolve('node-gyp/bin/node-gyp.js'),
  'rebuild',
  '--jobs=max',
  ...Object.entries(options).map(([k, v]) => `--${k}=${v}`),
];
const dir = nodeDir();
if (dir) args.push(`--nodedir=${dir}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  fail([
    '  node-gyp failed (its output is above). It needs python3, make and a C++17 compiler:',
    '    sudo apt-get install -y python3 make g++ libopenblas-dev',
  ]);
}
fs.writeFileSync(stampFile, JSON.stringify({ digest, options }, null, 2));
