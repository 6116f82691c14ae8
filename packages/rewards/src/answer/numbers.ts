// Numeric literals as people and models write them in final answers: -1,234, 0.5, .5,
// 3/4, 1 1/2, 2\frac{1}{3}, 12%, 1.5e-3, 1.5 \times 10^{-3}. Recognising these before the
// general expression parser matters twice: "1 1/2" is a mixed number (1.5), not 1*1/2,
// and two plain integers are compared exactly, not within a floating-point tolerance.

export interface NumberLiteral {
  value: number;
  /** Set when the literal is a plain integer: compared exactly. */
  integer?: bigint;
  percent: boolean;
}

const sign = '([+-]?)';
const int = '(\\d{1,3}(?:,\\d{3})+|\\d+)';
const thinSpacedInt = '(\\d{1,3}(?: \\d{3})+)';
const decimal = '(\\d{1,3}(?:,\\d{3})+\\.\\d*|\\d*\\.\\d+|\\d+\\.)';

const patterns = {
  integer: new RegExp(`^${sign}${int}$`),
  spacedInteger: new RegExp(`^${sign}${thinSpacedInt}$`),
  decimal: new RegExp(`^${sign}${decimal}$`),
  scientific: new RegExp(`^${sign}(\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE]|\\s*(?:\\\\times|\\\\cdot|\\*|×|x)\\s*10\\s*\\^\\s*)\\{?([+-]?\\d+)\\}?$`),
  fraction: /^([+-]?)(\d+)\s*\/\s*(\d+)$/,
  latexFraction: /^([+-]?)\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}$/,
  signedLatexFraction: /^\\frac\s*\{\s*([+-]?)\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}$/,
  mixed: /^([+-]?)(\d+)\s+(\d+)\s*\/\s*(\d+)$/,
  latexMixed: /^([+-]?)(\d+)\s*\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}$/,
};

/** The number `text` spells, or null when it is not one of the literal forms above. */
export function parseNumberLiteral(text: string): NumberLiteral | null {
  let s = text.trim().replace(/−/g, '-');
  let percent = false;
  if (s.endsWith('%')) {
    percent = true;
    s = s.slice(0, -1).trim();
  }
  const lit = parseUnsignedForms(s);
  if (!lit) return null;
  return { ...lit, percent };
}

function parseUnsignedForms(s: string): Omit<NumberLiteral, 'percent'> | null {
  let m = patterns.integer.exec(s) ?? patterns.spacedInteger.exec(s);
  if (m) {
    const digits = m[2].replace(/[, ]/g, '');
    const integer = BigInt(m[1] === '-' ? `-${digits}` : digits);
    return { value: Number(integer), integer };
  }
  if ((m = patterns.decimal.exec(s))) return { value: Number(m[1] + m[2].replace(/,/g, '')) };
  if ((m = patterns.scientific.exec(s))) return { value: Number(`${m[1]}${m[2]}e${m[3]}`) };
  if ((m = patterns.fraction.exec(s) ?? patterns.latexFraction.exec(s) ?? patterns.signedLatexFraction.exec(s))) {
    // n/0 is no number; the expression parser will call it undefined.
    if (Number(m[3]) === 0) return null;
    return { value: signed(m[1], Number(m[2]) / Number(m[3])) };
  }
  if ((m = patterns.mixed.exec(s) ?? patterns.latexMixed.exec(s))) {
    const den = Number(m[4]);
    // 3 4/2 is not how anyone writes a mixed number; refuse rather than guess.
    if (den === 0 || Number(m[3]) >= den) return null;
    return { value: signed(m[1], Number(m[2]) + Number(m[3]) / den) };
  }
  return null;
}

function signed(sign: string, v: number): number {
  return sign === '-' ? -v : v;
}
