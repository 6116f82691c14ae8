// What every engine benchmark script needs: flags, a clock, reproducible token ids, and this
// process's memory as Linux counts it.
'use strict';
const fs = require('node:fs');

/** The value after `--name` on the command line, or `fallback`. */
function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
}

/** Seconds since `start` (a process.hrtime.bigint()). */
function seconds(start) {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** n token ids below `vocab` from a linear congruential generator: the same ids for a seed everywhere. */
function randomTokens(n, vocab, seed) {
  let s = seed >>> 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % vocab;
  }
  return out;
}

/** A field of /proc/self/status in MiB: VmRSS (resident now) or VmHWM (peak resident). */
function statusMib(field) {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(field + ':'));
  return Number(line.split(/\s+/)[1]) / 1024;
}

module.exports = { option, seconds, randomTokens, statusMib };
