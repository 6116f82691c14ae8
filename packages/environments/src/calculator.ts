// The built-in calculator: arithmetic expressions read by a small recursive-descent parser
// and evaluated over doubles. Nothing is ever handed to eval or Function: the grammar below is
// all it understands (numbers, + - * / % ^, unary minus, parentheses), so a model's tool call
// cannot reach anything but arithmetic. Length and nesting are bounded so that a hostile
// expression costs microseconds.
export const MAX_EXPRESSION_CHARS = 256;
const MAX_DEPTH = 64;

export class CalculatorError extends Error {}

type Token = { kind: 'num'; value: number; at: number } | { kind: 'op'; op: string; at: number };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
    } else if (/[0-9.]/.test(c)) {
      const m = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) throw new CalculatorError(`bad number at character ${i + 1}`);
      out.push({ kind: 'num', value: Number(m[0]), at: i });
      i += m[0].length;
    } else if ('+-*/%^()'.includes(c)) {
      // "**" is accepted as a spelling of "^".
      if (c === '*' && text[i + 1] === '*') {
        out.push({ kind: 'op', op: '^', at: i });
        i += 2;
      } else {
        out.push({ kind: 'op', op: c, at: i });
        i++;
      }
    } else if (c === '×' || c === '÷') {
      out.push({ kind: 'op', op: c === '×' ? '*' : '/', at: i });
      i++;
    } else {
      throw new CalculatorError(`unexpected '${c}' at character ${i + 1}`);
    }
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): number {
    if (this.tokens.length === 0) throw new CalculatorError('empty expression');
    const v = this.sum(0);
    const rest = this.tokens[this.i];
    if (rest) throw new CalculatorError(`unexpected '${rest.kind === 'num' ? rest.value : rest.op}' at character ${rest.at + 1}`);
    return v;
  }

  private peekOp(): string | undefined {
    const t = this.tokens[this.i];
    return t?.kind === 'op' ? t.op : undefined;
  }

  private sum(depth: number): number {
    let v = this.product(depth);
    for (let op = this.peekOp(); op === '+' || op === '-'; op = this.peekOp()) {
      this.i++;
      const r = this.product(depth);
      v = op === '+' ? v + r : v - r;
    }
    return v;
  }

  private product(depth: number): number {
    let v = this.power(depth);
    for (let op = this.peekOp(); op === '*' || op === '/' || op === '%'; op = this.peekOp()) {
      this.i++;
      const r = this.power(depth);
      if ((op === '/' || op === '%') && r === 0) throw new CalculatorError('division by zero');
      v = op === '*' ? v * r : op === '/' ? v / r : v % r;
    }
    return v;
  }

  // Right-associative: 2^3^2 is 2^9.
  private power(depth: number): number {
    const base = this.unary(depth);
    if (this.peekOp() !== '^') return base;
    this.i++;
    return base ** this.power(depth + 1);
  }

  private unary(depth: number): number {
    if (depth > MAX_DEPTH) throw new CalculatorError(`nested deeper than ${MAX_DEPTH}`);
    const op = this.peekOp();
    if (op === '-' || op === '+') {
      this.i++;
      const v = this.unary(depth + 1);
      return op === '-' ? -v : v;
    }
    return this.primary(depth);
  }

  private primary(depth: number): number {
    const t = this.tokens[this.i];
    if (!t) throw new CalculatorError('expression ends too early');
    if (t.kind === 'num') {
      this.i++;
      return t.value;
    }
    if (t.op === '(') {
      this.i++;
      const v = this.sum(depth + 1);
      if (this.peekOp() !== ')') throw new CalculatorError(`missing ')' for the '(' at character ${t.at + 1}`);
      this.i++;
      return v;
    }
    throw new CalculatorError(`unexpected '${t.op}' at character ${t.at + 1}`);
  }
}

/** The value of an arithmetic expression; a CalculatorError says what is wrong with it. */
export function evaluateExpression(expression: string): number {
  if (typeof expression !== 'string') throw new CalculatorError('the expression must be a string');
  if (expression.length > MAX_EXPRESSION_CHARS) throw new CalculatorError(`longer than ${MAX_EXPRESSION_CHARS} characters`);
  const v = new Parser(tokenize(expression)).parse();
  if (!Number.isFinite(v)) throw new CalculatorError('the result is not a finite number');
  return v;
}

/** A result as the model reads it: integers exactly, others to 10 significant digits. */
export function formatNumber(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  return String(Number(v.toPrecision(10)));
}
