import { buildSftExample, buildSftExampleFromText, collateSft, generateTasks } from '@temper/data';
import { ByteTokenizer } from '@temper/tokenizers';

describe('SFT examples', () => {
  const tok = new ByteTokenizer();
  const eos = tok.specialTokens.eos!;

  it('put the loss on the response and EOS only', () => {
    const item = generateTasks({ task: 'arithmetic', split: 'train', difficulty: 1, seed: 1, count: 1 })[0];
    const ex = buildSftExampleFromText(tok, { prompt: item.prompt, response: item.reference }, { maxLength: 256 })!;
    const prompt = tok.applyChatTemplate([{ role: 'user', content: item.prompt }], { addGenerationPrompt: true });
    expect(ex.promptLength).toBe(tok.encode(prompt).length);
    expect(tok.decode(ex.tokens.subarray(0, ex.promptLength))).toBe(prompt);
    expect(tok.decode(ex.tokens.subarray(ex.promptLength))).toBe(`${item.reference}<eos>`);
    expect(ex.tokens[ex.tokens.length - 1]).toBe(eos);
    for (let t = 0; t < ex.tokens.length; t++) expect(ex.lossMask[t]).toBe(t >= ex.promptLength ? 1 : 0);
    // The format markers are single tokens inside the target.
    const targets = Array.from(ex.tokens.subarray(ex.promptLength));
    expect(targets[0]).toBe(tok.specialTokens.think);
    expect(ex.truncated).toBe(false);
  });

  it('put a system turn in the prompt', () => {
    const ex = buildSftExampleFromText(tok, { system: 'Be brief.', prompt: '1+1', response: '<answer>2</answer>' }, { maxLength: 64 })!;
    expect(tok.decode(ex.tokens.subarray(0, ex.promptLength))).toBe('Be brief.\nQ: 1+1\nA: ');
  });

  it('drop or truncate an example that does not fit', () => {
    const prompt = Int32Array.of(5, 6, 7);
    const response = Int32Array.of(8, 9, 10, 11);
    expect(buildSftExample(prompt, response, eos, { maxLength: 8 })).not.toBeNull();
    expect(buildSftExample(prompt, response, eos, { maxLength: 7 })).toBeNull();
    const cut = buildSftExample(prompt, response, eos, { maxLength: 6, overflow: 'truncate' })!;
    expect(Array.from(cut.tokens)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(Array.from(cut.lossMask)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(cut.truncated).toBe(true);
    // A prompt that fills the whole length leaves nothing to learn.
    expect(buildSftExample(prompt, response, eos, { maxLength: 3, overflow: 'truncate' })).toBeNull();
    expect(() => buildSftExample(prompt, response, eos, { maxLength: 1 })).toThrow(/maxLength/);
  });

  it('never make the first token a target, even with an empty prompt', () => {
    const ex = buildSftExample([], [8, 9], eos, { maxLength: 8 })!;
    expect(Array.from(ex.lossMask)).toEqual([0, 1, 1]);
  });

  it('need an EOS token', () => {
    const noEos = { ...tok, encode: tok.encode.bind(tok), applyChatTemplate: tok.applyChatTemplate.bind(tok), specialTokens: {} };
    expect(() => buildSftExampleFromText(noEos, { prompt: 'a', response: 'b' }, { maxLength: 8 })).toThrow(/EOS/);
  });

  it('collate into padded rows whose padding is never a target', () => {
    const a = buildSftExample([5, 6], [7], eos, { maxLength: 16 })!;
    const b = buildSftExample([5], [7, 8, 9, 10], eos, { maxLength: 16 })!;
    const pad = tok.specialTokens.pad!;
    const batch = collateSft([a, b], pad);
    expect(batch.batch).toBe(2);
    expect(batch.length).toBe(6);
    expect(Array.from(batch.lengths)).toEqual([4, 6]);
    expect(Array.from(batch.tokens)).toEqual([5, 6, 7, eos, pad, pad, 5, 7, 8, 9, 10, eos]);
    expect(Array.from(batch.lossMask)).toEqual([0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(() => collateSft([], pad)).toThrow(/empty batch/);
  });
});
