import { ByteTokenizer, byteSpecialTokens, createTokenizer } from '@temper/tokenizers';

// A seeded stream of random code points over every Unicode plane (surrogates excluded,
// since a lone surrogate is not text), so round-trips are checked beyond ASCII.
function randomText(seed: number, length: number): string {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  let out = '';
  for (let i = 0; i < length; i++) {
    const band = next() % 4;
    let cp = band === 0 ? next() % 0x80 : band === 1 ? 0x80 + (next() % 0x780) : band === 2 ? 0x800 + (next() % 0xf800) : 0x10000 + (next() % 0x100000);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    out += String.fromCodePoint(cp);
  }
  return out;
}

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('has the 256 bytes and the special tokens, each its own id', () => {
    expect(tok.vocabSize).toBe(256 + byteSpecialTokens.length);
    const ids = Object.values(tok.specialTokens);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toBeGreaterThanOrEqual(256);
    expect(tok.decode([tok.specialTokens.think!, tok.specialTokens.answerEnd!])).toBe('<think></answer>');
  });

  it('encodes ASCII as its bytes', () => {
    expect(Array.from(tok.encode('Az 9'))).toEqual([65, 122, 32, 57]);
    expect(tok.tokenToId('A')).toBe(65);
    expect(tok.tokenToId('</answer>')).toBe(tok.specialTokens.answerEnd);
    expect(tok.tokenToId('é')).toBeUndefined();
    expect(tok.tokenToId('ab')).toBeUndefined();
  });

  it('round-trips arbitrary UTF-8 text', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const text = randomText(seed, 200);
      const ids = tok.encode(text);
      expect(ids.length).toBe(Buffer.byteLength(text, 'utf8'));
      expect(tok.decode(ids)).toBe(text);
    }
    const mixed = 'naïve 数学 🙂 <think>2+2=4</think><answer>4</answer>';
    expect(tok.decode(tok.encode(mixed))).toBe(mixed);
  });

  it('round-trips text mixed with special tokens, each marker one id', () => {
    const markers = ['<think>', '</think>', '<answer>', '</answer>', '<eos>', '<bos>', '<pad>', '<', '>', '</', '<think', 'answer>'];
    for (let seed = 1; seed <= 200; seed++) {
      const parts = Array.from({ length: 8 }, (_, i) => (seed * 7 + i * 13) % 3 === 0 ? markers[(seed + i) % markers.length] : randomText(seed * 31 + i, 5));
      const text = parts.join('');
      const ids = tok.encode(text);
      expect(tok.decode(ids)).toBe(text);
      const specialIds = Array.from(ids).filter((id) => id >= 256).length;
      const wholeMarkers = (text.match(/<\/?(think|answer)>|<(eos|bos|pad)>/g) ?? []).length;
      expect(specialIds).toBe(wholeMarkers);
    }
  });

  it('turns the answer-format markers into single tokens, and only whole markers', () => {
    const ids = Array.from(tok.encode('<think>a</think><answer>b</answer>'));
    const { think, thinkEnd, answer, answerEnd } = tok.specialTokens;
    expect(ids).toEqual([think, 97, thinkEnd, answer, 98, answerEnd]);
    // A near miss stays bytes.
    expect(Array.from(tok.encode('<thin>'))).toEqual(Array.from(Buffer.from('<thin>')));
    // Literal markers in user data can be kept as bytes.
    expect(tok.encode('<eos>', { parseSpecialTokens: false }).length).toBe(5);
    expect(Array.from(tok.encode('<eos>'))).toEqual([tok.specialTokens.eos]);
  });

  it('leaves out control tokens, but not format markers, when asked', () => {
    const { bos, eos, pad, answer, answerEnd } = tok.specialTokens;
    const ids = [bos!, answer!, 55, answerEnd!, eos!, pad!, pad!];
    expect(tok.decode(ids)).toBe('<bos><answer>7</answer><eos><pad><pad>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('<answer>7</answer>');
  });

  it('decodes bytes that are not UTF-8 to replacement characters instead of failing', () => {
    expect(tok.decode([0xff, 65, 0xe2, 0x82])).toBe('\ufffdA\ufffd');
  });

  it('reads ids past the vocabulary (a padded embedding) as replacement characters, and refuses non-ids', () => {
    expect(tok.decode([65, tok.vocabSize, 66, tok.vocabSize + 40])).toBe('A\ufffdB\ufffd');
    // A multi-byte character cut by such an id is not glued back together across it.
    expect(tok.decode([0xc3, tok.vocabSize, 0xa9])).toBe('\ufffd\ufffd\ufffd');
    expect(() => tok.decode([-1])).toThrow(/not a token id/);
    expect(() => tok.decode([1.5])).toThrow(/not a token id/);
  });

  it('takes extra special tokens, matching the longest first', () => {
    const t = new ByteTokenizer({ extraSpecialTokens: ['<tool>', '<tool_call>'] });
    expect(t.vocabSize).toBe(256 + byteSpecialTokens.length + 2);
    const ids = Array.from(t.encode('<tool_call>x<tool>'));
    expect(ids).toEqual([t.tokenToId('<tool_call>'), 120, t.tokenToId('<tool>')]);
    expect(() => new ByteTokenizer({ extraSpecialTokens: ['<eos>'] })).toThrow(/listed twice/);
  });

  it('renders its compact chat template, with a generation prompt on request', () => {
    const messages = [
      { role: 'system', content: 'Answer in the format.' },
      { role: 'user', content: '2+3' },
      { role: 'assistant', content: '<answer>5</answer>' },
      { role: 'user', content: '4*2' },
    ];
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe('Answer in the format.\nQ: 2+3\nA: <answer>5</answer><eos>\nQ: 4*2\nA: ');
    expect(tok.applyChatTemplate(messages.slice(1, 2))).toBe('Q: 2+3\n');
    expect(tok.applyChatTemplate([{ role: 'tool', content: '8' }])).toBe('T: 8\n');
    expect(() => tok.applyChatTemplate([{ role: 'function', content: 'x' }])).toThrow(/unknown role: function/);
    // The rendered <eos> becomes the single eos id.
    const ids = tok.encode(tok.applyChatTemplate(messages.slice(1, 3)));
    expect(Array.from(ids).filter((i) => i === tok.specialTokens.eos)).toHaveLength(1);
  });

  it('uses a custom Jinja template, and reports a broken one when built', () => {
    const t = new ByteTokenizer({ chatTemplate: '{% for m in messages %}[{{ m.role | upper }}]{{ m.content }}{% endfor %}{{ bos_token }}' });
    expect(t.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('[USER]hi<bos>');
    expect(() => new ByteTokenizer({ chatTemplate: '{% for m in messages %}' })).toThrow(/byte tokenizer chat template/);
  });

  it('is what createTokenizer gives for kind byte', () => {
    const t = createTokenizer({ kind: 'byte' });
    expect(t).toBeInstanceOf(ByteTokenizer);
    expect(t.vocabSize).toBe(tok.vocabSize);
    expect(() => createTokenizer({ kind: 'sentencepiece' } as never)).toThrow(/unknown tokenizer kind/);
  });
});
