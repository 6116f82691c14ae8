import { arithmeticCanonical, modularRemainderCanonical, sortingCanonical, generateTasks, instructionDocuments, instructionPairs, numberToWords, parseCompletion, qaDocuments, qaItems, qaPairs, splitOf, taskNames, webMathDocuments } from '@temper/data';

const take = <T>(it: Iterator<T>, n: number): T[] => Array.from({ length: n }, () => it.next().value as T);

// Every chain of equalities over digits and + - * / ^ ( ) (and "a mod b") in a text must
// hold: the synthetic corpora are only useful if they never state wrong arithmetic.
function checkEqualities(text: string): number {
  const normalised = text.replace(/(\d+) mod (\d+)/g, '($1%$2)');
  let checked = 0;
  for (const m of normalised.matchAll(/[\d+\-*/^%()]+(?:=[\d+\-*/^%()]+)+/g)) {
    const sides = m[0].split('=').map((side) => {
      expect(side).toMatch(/^[\d+\-*/^%()]+$/);
      return Function(`return (${side.replace(/\^/g, '**')})`)() as number;
    });
    for (const v of sides) expect(v).toBe(sides[0]);
    checked++;
  }
  return checked;
}

describe('web-math corpus', () => {
  it('is deterministic by seed', () => {
    expect(take(webMathDocuments(3), 20)).toEqual(take(webMathDocuments(3), 20));
    expect(take(webMathDocuments(4), 20)).not.toEqual(take(webMathDocuments(3), 20));
  });
  it('states only correct arithmetic', () => {
    let checked = 0;
    for (const doc of take(webMathDocuments('facts'), 400)) {
      expect(doc.source).toBe('web-math');
      checked += checkEqualities(doc.text);
    }
    expect(checked).toBeGreaterThan(1000);
  });
  it('poses no held-out problem with its answer', () => {
    let posed = 0;
    for (const doc of take(webMathDocuments('split'), 1500)) {
      for (const m of doc.text.matchAll(/I had (\d+) \w+ and gave away (\d+)\./g)) {
        expect(splitOf(arithmeticCanonical(Number(m[1]), [{ op: '-', k: Number(m[2]) }]))).toBe('train');
        posed++;
      }
      for (const m of doc.text.matchAll(/We write (\d+) mod (\d+)=/g)) {
        expect(splitOf(modularRemainderCanonical(Number(m[1]), Number(m[2])))).toBe('train');
        posed++;
      }
      for (const m of doc.text.matchAll(/(\d+)=\d+\*2\+\d, so \d+ is (even|odd)/g)) {
        expect(splitOf(modularRemainderCanonical(Number(m[1]), 2))).toBe('train');
        posed++;
      }
      for (const m of doc.text.matchAll(/Among ([\d, ]+), the smallest/g)) {
        expect(splitOf(sortingCanonical(m[1].split(', ').map(Number), false))).toBe('train');
        posed++;
      }
    }
    expect(posed).toBeGreaterThan(1000);
  });

  it('says correctly which numbers are prime, even or odd', () => {
    for (const doc of take(webMathDocuments('primes'), 300)) {
      for (const m of doc.text.matchAll(/(\d+) is (not )?prime/g)) {
        const n = Number(m[1]);
        const prime = n > 1 && Array.from({ length: n - 2 }, (_, i) => i + 2).every((d) => n % d !== 0);
        expect(!m[2]).toBe(prime);
      }
      for (const m of doc.text.matchAll(/so (\d+) is (even|odd)/g)) expect(Number(m[1]) % 2 === 0).toBe(m[2] === 'even');
    }
  });
});

describe('QA corpora', () => {
  it('are deterministic by seed, in short and long CoT', () => {
    for (const style of ['short', 'long'] as const) {
      expect(take(qaDocuments({ seed: 1, style }), 30)).toEqual(take(qaDocuments({ seed: 1, style }), 30));
      expect(take(qaDocuments({ seed: 2, style }), 30)).not.toEqual(take(qaDocuments({ seed: 1, style }), 30));
    }
  });

  it('draw every task, and long CoT reasons at greater length', () => {
    const items = take(qaItems({ seed: 1, style: 'short' }), 400);
    expect(new Set(items.map((x) => x.task))).toEqual(new Set(taskNames));
    const mean = (xs: { response: string }[]) => xs.reduce((s, x) => s + x.response.length, 0) / xs.length;
    const short = take(qaPairs({ seed: 1, style: 'short' }), 200);
    const long = take(qaPairs({ seed: 1, style: 'long' }), 200);
    expect(mean(long)).toBeGreaterThan(2 * mean(short));
    for (const p of [...short, ...long]) expect(parseCompletion(p.response).wellFormed).toBe(true);
    expect(short[0].source).toBe('qa-short-cot');
    expect(long[0].source).toBe('qa-long-cot');
    for (const doc of take(qaDocuments({ seed: 1, style: 'long' }), 200)) checkEqualities(doc.text.replace(/^Q: .*\n/, ''));
  });

  it('never contain a held-out problem', () => {
    const evalKeys = new Set<string>();
    for (const task of taskNames) for (let d = 1; d <= 3; d++) for (const x of generateTasks({ task, split: 'eval', difficulty: d, seed: 0, count: 15 })) evalKeys.add(x.canonical);
    const evalPrompts = new Set<string>();
    for (const task of taskNames) for (let d = 1; d <= 3; d++) for (const x of generateTasks({ task, split: 'eval', difficulty: d, seed: 0, count: 15 })) evalPrompts.add(x.prompt);
    for (const item of take(qaItems({ seed: 0, style: 'short', difficulty: [1, 2, 3] }), 3000)) {
      expect(item.split).toBe('train');
      expect(splitOf(item.canonical)).toBe('train');
      expect(evalKeys.has(item.canonical)).toBe(false);
      expect(evalPrompts.has(item.prompt)).toBe(false);
    }
  });

  it('take a renderer, tasks and difficulties', () => {
    const docs = take(qaDocuments({ seed: 1, style: 'short', tasks: ['sorting'], difficulty: [1], render: (p, r) => `<<${p}>>${r}` }), 20);
    for (const d of docs) expect(d.text).toMatch(/^<<Sort ascending: \d \d \d>><think>/);
    expect(() => take(qaDocuments({ seed: 1, style: 'short', tasks: [] }), 1)).toThrow(/no tasks/);
  });
});

describe('instruction corpus', () => {
  it('is deterministic, tagged by default or plain', () => {
    expect(take(instructionPairs({ seed: 5 }), 30)).toEqual(take(instructionPairs({ seed: 5 }), 30));
    for (const p of take(instructionPairs({ seed: 5 }), 100)) expect(parseCompletion(p.response).wellFormed).toBe(true);
    for (const p of take(instructionPairs({ seed: 5, format: 'plain' }), 100)) expect(p.response).not.toContain('<answer>');
    expect(take(instructionDocuments({ seed: 5 }), 1)[0].text).toMatch(/^Q: .+\nA: <think>/);
  });

  it('answers its instructions correctly', () => {
    for (const p of take(instructionPairs({ seed: 9, format: 'plain' }), 600)) {
      let m: RegExpExecArray | null;
      if ((m = /^Reverse the word (\w+)\.$/.exec(p.prompt))) expect(p.response).toBe([...m[1]].reverse().join(''));
      else if ((m = /^How many letters are in (\w+)\?$/.exec(p.prompt))) expect(p.response).toBe(String(m[1].length));
      else if ((m = /^Which is larger, (\d+) or (\d+)\?$/.exec(p.prompt))) expect(p.response).toBe(String(Math.max(Number(m[1]), Number(m[2]))));
      else if ((m = /^What number comes after (\d+)\?$/.exec(p.prompt))) expect(p.response).toBe(String(Number(m[1]) + 1));
      else if ((m = /^Write (\w+) in capitals\.$/.exec(p.prompt))) expect(p.response).toBe(m[1].toUpperCase());
      else if ((m = /^Add the digits of (\d+)\.$/.exec(p.prompt))) expect(p.response).toBe(String([...m[1]].reduce((s, c) => s + Number(c), 0)));
      else if ((m = /^Is (\d+) even or odd\?$/.exec(p.prompt))) expect(p.response).toBe(Number(m[1]) % 2 ? 'odd' : 'even');
      else if ((m = /^What is the first letter of (\w+)\?$/.exec(p.prompt))) expect(p.response).toBe(m[1][0]);
      else if ((m = /^Write (\d+) in words\.$/.exec(p.prompt))) expect(p.response).toBe(numberToWords(Number(m[1])));
      else throw new Error(`unrecognised instruction: ${p.prompt}`);
    }
  });

  it('spells numbers in words', () => {
    expect([0, 7, 13, 20, 47, 100, 305, 999].map(numberToWords)).toEqual([
      'zero',
      'seven',
      'thirteen',
      'twenty',
      'forty-seven',
      'one hundred',
      'three hundred and five',
      'nine hundred and ninety-nine',
    ]);
    expect(() => numberToWords(1000)).toThrow(RangeError);
  });
});
