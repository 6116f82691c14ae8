// A model holds gradients only once it trains: a generator, or a process that only scores
// log-probs, must not pay a second copy of the weights. Measured as the resident memory of a
// child process of its own (the test runner's heap would hide tens of megabytes), on a model of
// ~58 MB of fp32 weights, so the gradients' share stands well clear of the noise.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const script = `
const { Model } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'index.js'))});
const rss = () => process.memoryUsage().rss;
(async () => {
  const config = { model_type: 'llama', vocab_size: 16000, hidden_size: 512, intermediate_size: 1408,
    num_hidden_layers: 2, num_attention_heads: 8, num_key_value_heads: 8, max_position_embeddings: 256,
    tie_word_embeddings: true, rms_norm_eps: 1e-6, rope_theta: 10000 };
  const before = rss();
  const m = await Model.create(config, { seed: 1, threads: 1 });
  const tokens = Int32Array.from({ length: 16 }, (_, i) => (i * 37) % 16000);
  await m.generate({ prompts: [tokens.subarray(0, 8)], maxNewTokens: 4, temperature: 0 });
  await m.logprobs(tokens, { batch: 1, seqLen: 16, grad: false });
  const serving = rss() - before;
  await m.logprobs(tokens, { batch: 1, seqLen: 16 });
  await m.backward(new Float32Array(15).fill(-1));
  const trained = rss() - before;
  const grads = await m.grads();
  const nonzero = Object.values(grads).some((g) => g.some((x) => x !== 0));
  console.log(JSON.stringify({ serving, trained, nonzero }));
})();
`;

describe('gradients', () => {
  it('are made at the first backward, not when the model is created or generates', () => {
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const { serving, trained, nonzero } = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const weightBytes = 4 * (16000 * 512 + 2 * (4 * 512 * 512 + 3 * 512 * 1408) + 2 * 2 * 512 + 512);
    // Serving holds the weights and scratch, not a second copy for gradients.
    expect(serving).toBeLessThan(1.5 * weightBytes);
    // The first backward makes them: about one more copy of the weights.
    expect(trained - serving).toBeGreaterThan(0.8 * weightBytes);
    expect(nonzero).toBe(true);
  }, 60000);
});
