#!/usr/bin/env node
// Generation memory at a released model's shape (random weights, CPU): peak resident memory and
// tokens/s of `prompts` x n completions of up to `new` tokens, prompts of `prompt` tokens. Prints
// one JSON object: resident memory after the model is made, peak resident memory of the whole
// run, tokens generated and tokens/s of generate() alone. `--addon <native dir>` measures another
// build (a checkout's built native/) with the same arguments, for side-by-side figures.
//   node native/bench/generate_memory.js --shape qwen2.5-0.5b --prompts 64 --n 1 --new 1024 --prompt 100
'use strict';
const { option, randomTokens, statusMib } = require('./common');
const path = require('node:path');

const { Model, MODEL_PRESETS } = require(path.resolve(option('--addon', path.join(__dirname, '..')), 'dist', 'index.js'));

/** Resident and peak resident memory of this process, in MiB (Linux). */
function rss() {
  return { rss_mib: Math.round(statusMib('VmRSS')), peak_rss_mib: Math.round(statusMib('VmHWM')) };
}

async function main() {
  const shape = option('--shape', 'qwen2.5-0.5b');
  const preset = MODEL_PRESETS[shape];
  if (!preset) throw new Error(`--shape: unknown preset ${shape} (one of ${Object.keys(MODEL_PRESETS).join(', ')})`);
  const prompts = Number(option('--prompts', '64')), n = Number(option('--n', '1'));
  const maxNew = Number(option('--new', '1024')), promptLen = Number(option('--prompt', '100'));
  const threads = Number(option('--threads', '2'));
  const model = await Model.create(preset.config, { seed: 1, threads });
  const loaded = rss();
  const vocab = preset.config.vocab_size;
  const ps = Array.from({ length: prompts }, (_, i) => randomTokens(promptLen, vocab, i + 1));
  const start = process.hrtime.bigint();
  const out = await model.generate({ prompts: ps, n, maxNewTokens: maxNew, temperature: 1, topP: 0.95, seed: 3 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const tokens = out.reduce((s, c) => s + c.tokens.length, 0);
  const after = rss();
  console.log(JSON.stringify({
    shape, prompts, n, completions: out.length, prompt_tokens: promptLen, max_new_tokens: maxNew, threads,
    rss_after_load_mib: loaded.rss_mib, peak_rss_mib: after.peak_rss_mib,
    generated_tokens: tokens, seconds: Number(seconds.toFixed(2)), tokens_per_s: Number((tokens / seconds).toFixed(1)),
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
