import { createRng, verifyCountdown, type Rng } from '@temper/data';

describe('verifyCountdown', () => {
  const numbers = [3, 4, 5];

  it('accepts expressions that use the numbers and reach the target', () => {
    expect(verifyCountdown('3*4-5', numbers, 7)).toEqual({ ok: true, value: '7' });
    expect(verifyCountdown(' (5 - 3) * 4 ', numbers, 8)).toEqual({ ok: true, value: '8' });
    // The typeset operators count as * and /.
    expect(verifyCountdown('4×(5-3)', numbers, 8).ok).toBe(true);
    expect(verifyCountdown('4×5÷(3-3+3)', [3, 3, 3, 4, 5], 20).reason).toBe('evaluates to 20/3, not 20');
    expect(verifyCountdown('3*4-5=7', numbers, 7).ok).toBe(true);
  });

  it('computes exactly: fractions in between are fine, fractional results are not', () => {
    expect(verifyCountdown('(3/4)*4*5', [3, 4, 4, 5], 15).ok).toBe(true);
    expect(verifyCountdown('5/4+3', numbers, 4)).toEqual({ ok: false, reason: 'evaluates to 17/4, not 4', value: '17/4' });
    // 1/3*3 is exactly 1 in rationals; floating point would give 0.9999999999999999 or 1 by luck.
    expect(verifyCountdown('1/3*3+9', [1, 3, 3, 9], 10).ok).toBe(true);
  });

  it('rejects numbers that were not given', () => {
    expect(verifyCountdown('3*4-5+0', numbers, 7).reason).toBe('number 0 is not one of the given numbers');
    expect(verifyCountdown('7', numbers, 7, { mustUseAll: false }).reason).toBe('number 7 is not one of the given numbers');
    expect(verifyCountdown('12-5', numbers, 7).reason).toMatch(/number 12 is not one/);
    expect(verifyCountdown('99999999999999999999999*0+7', numbers, 7).reason).toMatch(/is not one of the given numbers/);
  });

  it('rejects reused numbers and unused numbers', () => {
    expect(verifyCountdown('3+3+4-5', numbers, 5).reason).toBe('number 3 is used more times than given');
    expect(verifyCountdown('3+4', numbers, 7).reason).toBe('not every number is used (unused: 5)');
    expect(verifyCountdown('3+4', numbers, 7, { mustUseAll: false }).ok).toBe(true);
    expect(verifyCountdown('3+3', [3, 3], 6).ok).toBe(true);
  });

  it('rejects division by zero', () => {
    expect(verifyCountdown('5/(4-4)+3', [3, 4, 4, 5], 3).reason).toBe('division by zero');
    expect(verifyCountdown('5/(3-3)', [3, 3, 5], 0)).toEqual({ ok: false, reason: 'division by zero' });
  });

  it('rejects exponents, unary signs, decimals and anything that is not arithmetic', () => {
    expect(verifyCountdown('3**4**5', numbers, 7).reason).toMatch(/\*\* is not allowed/);
    expect(verifyCountdown('3^4^5', numbers, 7).reason).toMatch(/\^ is not allowed/);
    expect(verifyCountdown('9^999999999', [9, 999999999], 7).reason).toMatch(/\^ is not allowed/);
    expect(verifyCountdown('-3+4*5', numbers, 17).reason).toBe('unary signs are not allowed');
    expect(verifyCountdown('4*5-(-3)', numbers, 23).reason).toBe('unary signs are not allowed');
    expect(verifyCountdown('3.0+4', numbers, 7).reason).toBe('only whole numbers are allowed');
    expect(verifyCountdown('Math.max(3,4,5)', numbers, 5).reason).toMatch(/unexpected character/);
    expect(verifyCountdown('process.exit()', numbers, 5).ok).toBe(false);
    expect(verifyCountdown('3+4=7=7', numbers, 7).reason).toBe('more than one =');
  });

  it('rejects malformed, empty, oversized and deeply nested answers without throwing', () => {
    expect(verifyCountdown('', numbers, 7).reason).toBe('empty answer');
    expect(verifyCountdown('(3+4', numbers, 7).reason).toBe('missing )');
    expect(verifyCountdown('3+', numbers, 7).reason).toBe('expression ends too early');
    expect(verifyCountdown('3 4 5', numbers, 7).reason).toBe('unexpected 4');
    expect(verifyCountdown('3+4'.padEnd(500, ' '), numbers, 7).reason).toMatch(/longer than 200/);
    const deep = '('.repeat(60) + '3' + ')'.repeat(60) + '+4-5';
    expect(verifyCountdown(deep, numbers, 2).reason).toBe('expression is nested too deeply');
  });

  it('judges a claimed result after = as well', () => {
    expect(verifyCountdown('3*4-5=8', numbers, 7).reason).toBe('claims 8, target is 7');
    expect(verifyCountdown('3*4+5=7', numbers, 7).reason).toBe('evaluates to 17, not 7');
  });
});

// Random expressions over random numbers, each number used once, with random parentheses.
function randomExpression(rng: Rng, numbers: number[]): string {
  if (numbers.length === 1) return String(numbers[0]);
  const cut = rng.int(1, numbers.length - 1);
  const op = rng.pick(['+', '-', '*', '/']);
  const wrap = (s: string) => (rng.chance(0.5) || s.length > 3 ? `(${s})` : s);
  return `${wrap(randomExpression(rng, numbers.slice(0, cut)))}${rng.chance(0.3) ? ' ' : ''}${op}${wrap(randomExpression(rng, numbers.slice(cut)))}`;
}

describe('verifyCountdown on random expressions', () => {
  it('agrees with an independent evaluation', () => {
    const rng = createRng('verifier-fuzz', 1);
    let hits = 0;
    for (let i = 0; i < 3000; i++) {
      const numbers = Array.from({ length: rng.int(1, 5) }, () => rng.int(0, 30));
      const expr = randomExpression(rng, rng.shuffle(numbers));
      // Floating point is a fair judge here: a handful of small numbers keeps it exact enough.
      const float = Function(`return (${expr})`)() as number;
      const verdict = verifyCountdown(expr, numbers, Math.round(Number.isFinite(float) ? float : 0));
      if (!Number.isFinite(float) || Number.isNaN(float)) {
        // Division by zero somewhere (JS gives Infinity or NaN) must be refused. A zero divisor
        // can also hide inside a finite result (1/(1/0) = 0 in JS), so only this direction is checked.
        expect(verdict.ok).toBe(false);
        continue;
      }
      if (verdict.reason === 'division by zero') continue;
      const isInteger = Math.abs(float - Math.round(float)) < 1e-9;
      expect(verdict.ok).toBe(isInteger);
      if (verdict.ok) hits++;
      // Any other target is refused.
      expect(verifyCountdown(expr, numbers, Math.round(float) + 1).ok).toBe(false);
    }
    expect(hits).toBeGreaterThan(1000);
  });

  it('never throws on garbage', () => {
    const rng = createRng('verifier-garbage', 1);
    const alphabet = '0123456789+-*/()^.=xe ×÷\u0000\n';
    for (let i = 0; i < 5000; i++) {
      const text = Array.from({ length: rng.int(0, 40) }, () => rng.pick([...alphabet])).join('');
      const verdict = verifyCountdown(text, [1, 2, 3, 4], 10);
      expect(typeof verdict.ok).toBe('boolean');
      if (!verdict.ok) expect(typeof verdict.reason).toBe('string');
    }
  });
});

