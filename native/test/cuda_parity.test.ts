// The CUDA backend against the truth, on a GPU: every fixture of ../shared/fixtures (and next/) in
// fp32 and bf16 mode, and CPU vs CUDA on a larger random Qwen2-like model (log-probs, gradients, AdamW,
// greedy and sampled generation, continuous batching, adapters, export / import). The checks
// live in native/dev/cuda/parity.js so a GPU machine without Jest runs the same ones. Skipped,
// with the reason in the title, without a device. TEMPER_FIXTURES overrides the fixtures' folder.
import * as engine from '@temper/native';

import { fixturesDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const parity = require('../dev/cuda/parity.js') as {
  checks: (e: typeof engine) => Record<'fixture' | 'training' | 'generation' | 'adapters', (...a: string[]) => Promise<Record<string, unknown>>>;
  fixtureNames: (dir: string) => string[];
};

const devices = engine.cudaDevices();
const gpu = devices.count > 0;
const dir = process.env.TEMPER_FIXTURES ?? fixturesDir;
const why = gpu ? `${devices.count} device(s)` : `skipped: no CUDA device (${devices.reason ?? 'none'})`;

(gpu ? describe : describe.skip)(`CUDA parity (${why})`, () => {
  const c = parity.checks(engine);
  const names = gpu ? parity.fixtureNames(dir) : ['(fixtures)'];
  it('finds the fixtures', () => expect(names.length).toBeGreaterThan(0));
  for (const precision of ['fp32', 'bf16']) {
    for (const f of names) it(`fixture ${f}, ${precision}`, () => c.fixture(`${dir}/${f}`, precision), 120_000);
    it(`random model: training, ${precision}`, () => c.training(precision), 120_000);
    it(`random model: generation and continuous batching, ${precision}`, () => c.generation(precision), 120_000);
    it(`random model: adapters, export / import, merge, ${precision}`, () => c.adapters(precision), 120_000);
  }
});
