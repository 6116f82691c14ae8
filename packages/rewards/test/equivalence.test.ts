// Answer pairs that must and must not be judged equivalent: the rules of
// packages/rewards/src/answer/equivalence.ts, one family at a time.
import { defaultEquivalence, isEquivalent } from '@temper/rewards';

// [model answer, reference]
const mustMatch: [string, string][] = [
  // integers: signs, separators, spacing
  ['42', '42'], ['+42', '42'], ['-7', '-7'], ['−7', '-7'], ['- 7', '-7'], ['1,234', '1234'], ['1234', '1,234'],
  ['1,000,000', '1000000'], ['1 000 000', '1000000'], ['007', '7'], ['0', '-0'], ['12345678901234567890', '12,345,678,901,234,567,890'],
  ['42.', '42'], ['$42$', '42'], ['\\(42\\)', '42'], ['\\[42\\]', '42'], ['$$42$$', '42'], ['{42}', '42'], ['(42)', '42'],
  // decimals
  ['0.5', '.5'], ['.5', '0.5'], ['3.14', '3.140'], ['42.0', '42'], ['42', '42.00'], ['-0.25', '-.25'], ['1,234.5', '1234.5'],
  ['2.50', '2.5'], ['0.1', '0.10000000001'], ['1e-3', '0.001'],
  // fractions and mixed numbers
  ['1/2', '0.5'], ['\\frac{1}{2}', '1/2'], ['\\dfrac{1}{2}', '0.5'], ['\\tfrac{3}{4}', '0.75'], ['\\frac12', '1/2'], ['-\\frac{3}{4}', '-0.75'],
  ['\\frac{-3}{4}', '-3/4'], ['6/8', '3/4'], ['1 1/2', '3/2'], ['1\\frac{1}{2}', '1.5'], ['2\\frac{1}{3}', '7/3'], ['-1 1/2', '-1.5'],
  ['0.3333333333', '1/3'], ['\\frac{22}{7}', '22/7'], ['\\frac{10}{4}', '2.5'], ['\\frac{1}{3}', '\\dfrac{2}{6}'],
  // percentages
  ['50%', '0.5'], ['50\\%', '50%'], ['50%', '50'], ['12.5\\%', '0.125'], ['0.125', '12.5%'], ['100%', '1'], ['\\frac{1}{4}', '25\\%'],
  // scientific notation
  ['1.5e3', '1500'], ['1.5E3', '1500'], ['1.5 \\times 10^{3}', '1500'], ['1.5\\times10^3', '1500'], ['3 \\cdot 10^{-2}', '0.03'],
  ['6.02 \\times 10^{23}', '6.02e23'], ['2.5 x 10^4', '25000'], ['1e6', '1,000,000'],
  // LaTeX
  ['\\sqrt{2}', '2^{1/2}'], ['\\frac{\\sqrt{2}}{2}', '\\sqrt{2}/2'], ['\\frac{1}{\\sqrt{2}}', '\\frac{\\sqrt{2}}{2}'], ['2\\sqrt{3}', '\\sqrt{12}'],
  ['\\sqrt[3]{8}', '2'], ['\\sqrt[3]{-27}', '-3'], ['\\pi', '3.14159265358979'], ['2\\pi', '\\pi \\cdot 2'], ['\\frac{\\pi}{2}', '\\pi/2'],
  ['\\left( \\frac{1}{2} \\right)', '0.5'], ['\\displaystyle\\frac{3}{5}', '0.6'], ['\\text{12}', '12'], ['\\textbf{12}', '12'], ['\\mathrm{12}', '12'],
  ['12\\text{ cm}', '12'], ['12 \\text{cm}^2', '12'], ['5 \\mathrm{kg}', '5'], ['45^\\circ', '45'], ['45^{\\circ}', '45'], ['45°', '45'],
  ['\\$12.50', '12.5'], ['\\boxed{7}', '7'], ['3\\,000', '3000'], ['\\pi^2/6', '1.6449340668482264'], ['e^2', '\\exp(2)'], ['\\ln(e^3)', '3'],
  ['\\sin(\\pi/6)', '1/2'], ['\\cos 0', '1'], ['|-5|', '5'], ['2^{10}', '1024'], ['10^{-2}', '0.01'], ['\\frac{2^{3}}{4}', '2'],
  ['4\\sqrt{2}', '\\sqrt{32}'], ['\\frac{1+\\sqrt{5}}{2}', '1.618033988749895'],
  // units and words around numbers
  ['12 cm', '12'], ['12 apples', '12'], ['20 km/h', '20'], ['3.5 cm^2', '3.5'], ['5 m', '5'], ['$5', '5'], ['18 dollars', '18'],
  ['the answer is 42', '42'], ['The final answer is 42', '42'], ['Answer: 42', '42'], ['Final answer: 42', '42'], ['So, 42', '42'],
  ['Therefore, 9', '9'], ['x = 5', '5'], ['x=5', '5'], ['n = 12', '12'], ['\\theta = 30^\\circ', '30'], ['y = 2x + 1', '2x+1'], ['x_1 = 3', '3'],
  // algebraic expressions by value
  ['2x+1', '1+2x'], ['x^2-1', '(x-1)(x+1)'], ['(x+1)^2', 'x^2+2x+1'], ['\\frac{x}{2}', '0.5x'], ['2(x+y)', '2x+2y'], ['xy', 'yx'],
  ['x \\cdot y', 'xy'], ['a^2b', 'ba^2'], ['\\frac{1}{x}+\\frac{1}{y}', '\\frac{x+y}{xy}'], ['\\sqrt{x^2}', 'x'], ['x^{1/2}', '\\sqrt{x}'],
  ['3x - 2x', 'x'], ['\\frac{x^2-4}{x-2}', 'x+2'], ['2^{x+1}', '2\\cdot 2^x'], ['\\ln(x^2)', '2\\ln x'], ['e^{x}e^{y}', 'e^{x+y}'],
  ['\\sin^2 x + \\cos^2 x', '\\cos^2 x + \\sin^2 x'], ['x^3', 'x\\cdot x \\cdot x'], ['x^{2}', 'x^2'], ['\\text{Monday }', 'Monday'], ['\\frac{a+b}{2}', '\\frac{b+a}{2}'], ['-(x-1)', '1-x'],
  ['\\alpha + \\beta', '\\beta + \\alpha'], ['2\\pi r', '2r\\pi'], ['\\pi r^2', 'r^2\\pi'],
  // tuples, intervals, sets, lists
  ['(1, 2)', '(1,2)'], ['(1,2)', '\\left(1, 2\\right)'], ['(0.5, 2)', '(\\frac{1}{2}, 2)'], ['[0, 1)', '[0,1)'], ['(-\\infty, 3]', '(-\\infty,3]'],
  ['(2, \\infty)', '(2,\\infty)'], ['\\{1, 2, 3\\}', '\\{3, 2, 1\\}'], ['{1,2}', '{2,1}'], ['3, 2', '2, 3'], ['2, 3', '(2, 3)'],
  ['x = 2, y = 3', '(2, 3)'], ['x = 2 or x = 3', '3, 2'], ['2 and 3', '2, 3'], ['x = -1 \\text{ or } x = 4', '-1, 4'], ['1, -1', '-1, 1'], ['(-\\infty, 2) \\cup (3, \\infty)', '(3,\\infty)\\cup(-\\infty,2)'], ['[1, 2]', '[1, 2]'],
  ['(1/2, 1/3)', '(0.5, \\frac{1}{3})'], ['x \\in [0, 1)', '[0, 1)'], ['x \\in \\{1, 2\\}', '\\{2, 1\\}'], ['\\pm 2', '\\pm 2'], ['1 \\pm \\sqrt{2}', '1 \\pm \\sqrt2'],
  // multiple choice
  ['B', 'B'], ['(B)', 'B'], ['B)', 'B'], ['B.', 'B'], ['B. 42', 'B'], ['(C) 3/4', 'C'], ['Answer: C', 'C'], ['The answer is (D)', 'D'],
  ['\\text{(E)}', 'E'], ['\\textbf{A}', 'A'], ['option B', 'B'], ['b', 'b'], ['B', '(B)'], ['A', 'A.'], ['I choose B', 'B'],
  // text answers
  ['\\text{Monday}', 'Monday'], ['monday', 'Monday'], ['Yes', 'yes'], ['\\text{No}', 'No'], ['\\text{even}', 'even'],
  ['\\infty', '\\infty'], ['-\\infty', '-\\infty'],
];

const mustNotMatch: [string, string][] = [
  // integers are exact
  ['41', '42'], ['-42', '42'], ['42', '-42'], ['1000001', '1000000'], ['12345678901234567891', '12345678901234567890'], ['420', '42'],
  ['4,2', '42'], ['1,234', '1243'], ['0', '1'], ['7', '-7'], ['1', '0.1'],
  // decimals and fractions
  ['0.33', '1/3'], ['0.333', '1/3'], ['3.14', '\\pi'], ['1/2', '2'], ['2/1', '1/2'], ['\\frac{1}{2}', '\\frac{1}{3}'], ['1 1/2', '1/2'],
  ['1 1/2', '1.2'], ['2\\frac{1}{3}', '2/3'], ['1.41', '\\sqrt{2}'], ['0.5', '0.51'], ['1e-3', '0.01'], ['1.5e3', '150'],
  // percentages when switched off are tested separately; these are plain wrong
  ['50%', '0.05'], ['5%', '0.5'], ['25%', '0.3'],
  // LaTeX that differs
  ['\\sqrt{3}', '3'], ['\\sqrt{2}', '2'], ['\\pi', '2\\pi'], ['\\frac{\\pi}{3}', '\\frac{\\pi}{6}'], ['\\sqrt[3]{8}', '8'], ['2^{10}', '1000'],
  ['45^\\circ', '46'], ['12 cm', '13'], ['e', '2.7'], ['\\sin(\\pi/6)', '0.5001'],
  // expressions that differ
  ['2x+1', '2x-1'], ['x^2-1', '(x-1)^2'], ['x+1', 'y+1'], ['x', 'X'], ['2x', 'x^2'], ['\\frac{x}{2}', '\\frac{2}{x}'], ['x+y', 'xy'],
  ['(x+1)^2', 'x^2+1'], ['\\ln x', '\\log x'], ['x^3', '3x'], ['a+b', 'a-b'], ['42 + 0x', '42'], ['\\sin^2 x + \\cos^2 x', '1'], // variables must agree, even where they cancel
  ['x', '42'], ['42', 'x'],
  ['\\sin x', '\\cos x'], ['e^{x}', 'x^{e}'], ['x/y', 'y/x'],
  // tuples, intervals, sets
  ['(1, 2]', '(1, 2)'], ['[1, 2)', '(1, 2)'], ['(1, 2)', '(2, 1)'], ['(1, 2)', '[1, 2]'], ['(1, 2, 3)', '(1, 2)'], ['(1, 2)', '(1, 2, 3)'],
  ['{1, 2}', '{1, 3}'], ['1, 2', '1'], ['1', '1, 2'], ['2, 3', '2'], ['3, 4', '3'], ['(-\\infty, 3)', '(-\\infty, 3]'], ['(2, \\infty)', '[2, \\infty)'],
  ['{1, 1}', '{1, 2}'], ['1, 1', '1'], ['(0, 1)', '0.1'], ['(1, 000)', '1000'],
  // hedging and several candidates
  ['3 or 4', '3'], ['either 3 or 4', '3'], ['maybe 3', '3'], ['probably 42', '42'], ['42?', '42'], ['\\pm 2', '2'], ['\\pm 2', '-2'],
  ['possibly B', 'B'], ['x = 3 or x = 4', '3'], ['x = 3 or x = 5', '3, 4'], ['2 or 3 or 4', '2, 3'], ['999 or 1000', '1,000'], ['maybe 2 or 3', '2, 3'], ['42 (not sure)', '42'], ['I guess 7', '7'], ['it might be 5', '5'], ['perhaps \\frac{1}{2}', '0.5'],
  // multiple choice
  ['A', 'B'], ['(A)', 'B'], ['A or B', 'B'], ['A, B', 'B'], ['B and C', 'B'], ['A/B', 'B'], ['ABCD', 'B'], ['', 'B'], ['Answer: C', 'D'],
  ['(B) or (C)', 'C'], ['\\text{(A)}', 'E'], ['all of A B C D E', 'C'], ['b', 'B'],
  // text answers and junk
  ['\\text{Tuesday}', 'Monday'], ['yes', 'no'], ['', '42'], [' ', '42'], ['NaN', '42'], ['0/0', '1'], ['1/0', '\\infty'], ['\\infty', '-\\infty'], ['\\infty', '42'],
  ['42 = 43', '42'], ['x + y = 5', '5'], ['\\boxed{}', '42'], ['}{', '42'], ['((((42', '42'], ['42)', '42'],
  ['1/0', '1/0 + 1'], ['\\frac{1}{23}', '\\frac{12}{3}'], ['\\sqrt{2}3', '\\sqrt{23}'], ['\\text{ab}', '\\text{abc}'], ['the answer', 'answer'], ['forty-two', '42'],
];

describe('answer equivalence', () => {
  it('has at least 200 pairs', () => {
    expect(mustMatch.length + mustNotMatch.length).toBeGreaterThanOrEqual(200);
  });

  it.each(mustMatch)('%s matches %s', (answer, reference) => {
    expect(isEquivalent(answer, reference)).toBe(true);
  });

  it.each(mustNotMatch)('%s does not match %s', (answer, reference) => {
    expect(isEquivalent(answer, reference)).toBe(false);
  });

  it('is symmetric on the pairs without a hedge or a choice letter', () => {
    for (const [a, r] of mustMatch.filter(([a, r]) => !/[A-E]/.test(r) && !/\b(the|answer|so|therefore|final|option)\b/i.test(a))) {
      expect([a, r, isEquivalent(r, a)]).toEqual([a, r, true]);
    }
  });

  it('takes its tolerances from the options', () => {
    expect(isEquivalent('3.14', '\\pi')).toBe(false);
    expect(isEquivalent('3.14', '\\pi', { ...defaultEquivalence, relTolerance: 1e-3 })).toBe(true);
    expect(isEquivalent('0.33', '1/3', { ...defaultEquivalence, absTolerance: 0.01 })).toBe(true);
    // integers stay exact whatever the tolerance
    expect(isEquivalent('1000001', '1000000', { ...defaultEquivalence, relTolerance: 0.1 })).toBe(false);
  });

  it('can treat percentages as plain numbers only', () => {
    const strict = { ...defaultEquivalence, percentAsFraction: false };
    expect(isEquivalent('50%', '0.5', strict)).toBe(false);
    expect(isEquivalent('50%', '50', strict)).toBe(true);
  });

  it('uses the configured multiple-choice letters', () => {
    expect(isEquivalent('(F)', 'F')).toBe(true); // F is not a choice by default: compared as text
    expect(isEquivalent('F or G', 'F')).toBe(false);
    expect(isEquivalent('F', 'F', { ...defaultEquivalence, choices: 'ABCDEFGH' })).toBe(true);
    expect(isEquivalent('F, G', 'F', { ...defaultEquivalence, choices: 'ABCDEFGH' })).toBe(false);
  });

  it('gives the same verdict every time for expressions with variables', () => {
    const verdicts = new Set(Array.from({ length: 20 }, () => isEquivalent('(x+1)^2', 'x^2+2x+1')));
    expect([...verdicts]).toEqual([true]);
  });

  it('refuses pathological expressions quickly instead of hanging', () => {
    const deep = '('.repeat(5000) + '1' + ')'.repeat(5000);
    const tower = Array(200).fill('9').join('^');
    const long = Array(2000).fill('x').join('+');
    const t0 = Date.now();
    expect(isEquivalent(deep, '1')).toBe(false);
    expect(isEquivalent(tower, '1')).toBe(false);
    expect(isEquivalent(long, '2000x')).toBe(false);
    expect(isEquivalent('9^9^9^9^9', '\\infty')).toBe(true); // evaluates to Infinity, without a loop
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

// Generated pairs: a rational written in two of its forms must match; a neighbouring
// rational must not, whatever forms the two take. Seeded, so failures reproduce.
describe('answer equivalence on generated rationals', () => {
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: T[]) => xs[int(0, xs.length - 1)];

  function forms(p: number, q: number): string[] {
    const out = [`${p}/${q}`, `\\frac{${p}}{${q}}`, `\\dfrac{${p}}{${q}}`, `-\\frac{-${p}}{${q}}`];
    if (q === 1) out.push(String(p), `${p}.0`, p.toLocaleString('en-US'), `$${p}$`);
    if (Number.isInteger((p / q) * 1000)) out.push(String(p / q), `${(100 * p) / q}\\%`);
    if (p > q && q > 1 && p % q !== 0) out.push(`${Math.floor(p / q)} ${p % q}/${q}`, `${Math.floor(p / q)}\\frac{${p % q}}{${q}}`);
    return out;
  }

  it('matches 2000 pairs of forms of the same value and no neighbouring value', () => {
    const wrong: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const q = pick([1, 2, 3, 4, 5, 7, 8]);
      const p = int(1, 20000);
      const same = forms(p, q);
      const other = forms(p + int(1, 3), q);
      const [a, b, c] = [pick(same), pick(same), pick(other)];
      if (!isEquivalent(a, b)) wrong.push(`${a} should match ${b}`);
      if (isEquivalent(a, c)) wrong.push(`${a} should not match ${c}`);
    }
    expect(wrong).toEqual([]);
  });
});
