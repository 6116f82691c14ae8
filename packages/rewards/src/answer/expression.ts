// A small parser and evaluator for the math a model writes as a final answer: plain
// (2x^2 - 3/4, sqrt(2)*pi) and LaTeX (\frac{1}{2}, \sqrt[3]{x}, \left( ... \right)).
// Model output is untrusted, so this never reaches eval/Function: it builds a tree of
// a handful of node kinds and walks it, with hard caps on input length and nesting so a
// pathological answer is refused quickly instead of exhausting the stack.

export type Expr =
  | { k: 'num'; v: number }
  | { k: 'var'; name: string }
  | { k: 'neg'; a: Expr }
  | { k: 'bin'; op: '+' | '-' | '*' | '/' | '^'; a: Expr; b: Expr }
  | { k: 'fn'; name: FunctionName; a: Expr };

type FunctionName = (typeof functionNames)[number];
const functionNames = ['sqrt', 'sin', 'cos', 'tan', 'sec', 'csc', 'cot', 'arcsin', 'arccos', 'arctan', 'ln', 'log', 'exp', 'abs'] as const;
const functionSet = new Set<string>(functionNames);
const constants: Record<string, number> = { pi: Math.PI, e: Math.E, infty: Infinity, inf: Infinity };
// Greek letters are variables in answers (\alpha, \theta); \pi is the constant above.
const greek = new Set('alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi rho sigma tau upsilon phi varphi chi psi omega'.split(' '));

export const limits = { maxChars: 400, maxDepth: 64, maxTokens: 300 };

type Token =
  | { t: 'num'; v: number }
  | { t: 'id'; name: string }
  | { t: 'fn'; name: FunctionName }
  | { t: 'op'; op: string }
  | { t: 'frac' }
  | { t: 'sqrt' };

class ParseError extends Error {}

/** The tree of `text`, or null when it is not an expression this parser accepts. */
export function parseExpression(text: string): Expr | null {
  if (text.length === 0 || text.length > limits.maxChars) return null;
  try {
    const tokens = tokenize(text);
    if (tokens.length === 0 || tokens.length > limits.maxTokens) return null;
    const p = new Parser(tokens);
    const e = p.expression(0);
    if (!p.done()) return null;
    return e;
  } catch (err) {
    if (err instanceof ParseError) return null;
    throw err;
  }
}

// ---- tokens ----

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
    } else if (isDigit(c) || (c === '.' && isDigit(s[i + 1] ?? ''))) {
      i = readNumber(s, i, out);
    } else if (c === '\\') {
      i = readCommand(s, i, out);
    } else if (isLetter(c)) {
      i = readWord(s, i, out);
    } else if ('+-*/^(){}[]|'.includes(c)) {
      out.push({ t: 'op', op: c });
      i++;
    } else if (c === '·' || c === '×') {
      out.push({ t: 'op', op: '*' });
      i++;
    } else if (c === '÷') {
      out.push({ t: 'op', op: '/' });
      i++;
    } else if (c === '−') {
      out.push({ t: 'op', op: '-' });
      i++;
    } else if (c === 'π') {
      out.push({ t: 'id', name: 'pi' });
      i++;
    } else if (c === '√') {
      out.push({ t: 'sqrt' });
      i++;
    } else {
      throw new ParseError(`unexpected "${c}"`);
    }
  }
  return out;
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// 12, 1.5, .5, 1.5e-3 (an "e" is an exponent only when digits follow it; 2e alone is 2*e).
function readNumber(s: string, i: number, out: Token[]): number {
  const m = /^(\d*\.?\d+|\d+\.)(?:[eE][+-]?\d+)?/.exec(s.slice(i, i + 64));
  if (!m) throw new ParseError('bad number');
  out.push({ t: 'num', v: Number(m[0]) });
  return i + m[0].length;
}

// \frac \dfrac \tfrac, \sqrt, \pi, \cdot \times \div, \sin ..., Greek letters as variables.
function readCommand(s: string, i: number, out: Token[]): number {
  let j = i + 1;
  while (j < s.length && isLetter(s[j])) j++;
  const name = s.slice(i + 1, j);
  if (name === '') {
    // Escaped braces \{ \} group like braces; other escaped symbols are not math.
    if (s[j] === '{' || s[j] === '}') {
      out.push({ t: 'op', op: s[j] === '{' ? '(' : ')' });
      return j + 1;
    }
    throw new ParseError('stray backslash');
  }
  if (name === 'frac' || name === 'dfrac' || name === 'tfrac') out.push({ t: 'frac' });
  else if (name === 'sqrt') out.push({ t: 'sqrt' });
  else if (name === 'cdot' || name === 'times' || name === 'ast') out.push({ t: 'op', op: '*' });
  else if (name === 'div') out.push({ t: 'op', op: '/' });
  else if (name === 'left' || name === 'right' || name === 'displaystyle') {
    // sizing only: \left( is (
  } else if (name === 'pi' || name === 'infty') out.push({ t: 'id', name });
  else if (functionSet.has(name)) out.push({ t: 'fn', name: name as FunctionName });
  else if (greek.has(name)) out.push({ t: 'id', name: `\\${name}` });
  else throw new ParseError(`unknown command \\${name}`);
  return j;
}

// A run of letters: known function and constant names first, otherwise each letter is
// its own variable (xy is x*y). x_1 and x_{10} are single variables.
function readWord(s: string, i: number, out: Token[]): number {
  while (i < s.length && isLetter(s[i])) {
    const rest = s.slice(i, i + 6);
    // A function name may be glued to its argument ("sinx").
    const fn = functionNames.find((f) => rest.startsWith(f));
    if (fn) {
      out.push({ t: 'fn', name: fn });
      i += fn.length;
      continue;
    }
    if (rest.startsWith('pi')) {
      out.push({ t: 'id', name: 'pi' });
      i += 2;
      continue;
    }
    if (rest.startsWith('inf')) {
      out.push({ t: 'id', name: 'inf' });
      i += rest.startsWith('infinity') ? 8 : rest.startsWith('infty') ? 5 : 3;
      continue;
    }
    let name = s[i++];
    if (s[i] === '_') {
      const sub = /^_(\{[A-Za-z0-9]{1,8}\}|[A-Za-z0-9])/.exec(s.slice(i, i + 12));
      if (!sub) throw new ParseError('bad subscript');
      name += '_' + sub[1].replace(/[{}]/g, '');
      i += sub[0].length;
    }
    out.push({ t: 'id', name });
  }
  return i;
}

// ---- grammar ----
// expression := term (('+'|'-') term)*
// term       := unary (('*'|'/') unary | <juxtaposition> power)*
// unary      := ('+'|'-') unary | power
// power      := primary ('^' unary)?
// primary    := number | name | fn primary | '(' expression ')' | '{' expression '}'
//             | \frac group group | \sqrt ['[' expression ']'] group | '|' expression '|'

const closers: Record<string, string> = { '(': ')', '{': '}', '[': ']' };

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  done(): boolean {
    return this.pos === this.tokens.length;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private isOp(op: string): boolean {
    const t = this.tokens[this.pos];
    return t !== undefined && t.t === 'op' && t.op === op;
  }

  private expect(op: string): void {
    if (!this.isOp(op)) throw new ParseError(`expected ${op}`);
    this.pos++;
  }

  expression(depth: number): Expr {
    if (depth > limits.maxDepth) throw new ParseError('nested too deeply');
    let left = this.term(depth);
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.tokens[this.pos++] as { op: '+' | '-' }).op;
      left = { k: 'bin', op, a: left, b: this.term(depth) };
    }
    return left;
  }

  private term(depth: number): Expr {
    let left = this.unary(depth);
    for (;;) {
      if (this.isOp('*') || this.isOp('/')) {
        const op = (this.tokens[this.pos++] as { op: '*' | '/' }).op;
        left = { k: 'bin', op, a: left, b: this.unary(depth) };
      } else if (this.startsPrimary()) {
        left = { k: 'bin', op: '*', a: left, b: this.power(depth) };
      } else {
        return left;
      }
    }
  }

  private startsPrimary(): boolean {
    const t = this.peek();
    if (!t) return false;
    if (t.t === 'op') return t.op === '(' || t.op === '{';
    return true;
  }

  private unary(depth: number): Expr {
    if (depth > limits.maxDepth) throw new ParseError('nested too deeply');
    if (this.isOp('-')) {
      this.pos++;
      return { k: 'neg', a: this.unary(depth + 1) };
    }
    if (this.isOp('+')) {
      this.pos++;
      return this.unary(depth + 1);
    }
    return this.power(depth);
  }

  private power(depth: number): Expr {
    const base = this.primary(depth + 1);
    if (this.isOp('^')) {
      this.pos++;
      return { k: 'bin', op: '^', a: base, b: this.exponent(depth + 1) };
    }
    return base;
  }

  // x^2y is x^2 * y, and x^{2y} groups: an exponent is a signed primary (with its own ^).
  private exponent(depth: number): Expr {
    if (this.isOp('-')) {
      this.pos++;
      return { k: 'neg', a: this.exponent(depth + 1) };
    }
    if (this.isOp('+')) {
      this.pos++;
      return this.exponent(depth + 1);
    }
    return this.power(depth);
  }

  private primary(depth: number): Expr {
    if (depth > limits.maxDepth) throw new ParseError('nested too deeply');
    const t = this.tokens[this.pos++];
    if (!t) throw new ParseError('unexpected end');
    switch (t.t) {
      case 'num':
        return { k: 'num', v: t.v };
      case 'id':
        return t.name in constants ? { k: 'num', v: constants[t.name] } : { k: 'var', name: t.name };
      case 'fn': {
        // sin^2 x is (sin x)^2.
        if (this.isOp('^')) {
          this.pos++;
          const exponent = this.exponent(depth + 1);
          return { k: 'bin', op: '^', a: { k: 'fn', name: t.name, a: this.functionArgument(depth) }, b: exponent };
        }
        return { k: 'fn', name: t.name, a: this.functionArgument(depth) };
      }
      case 'frac': {
        const num = this.group(depth);
        return { k: 'bin', op: '/', a: num, b: this.group(depth) };
      }
      case 'sqrt':
        return this.root(depth);
      case 'op':
        if (t.op === '(' || t.op === '{' || t.op === '[') {
          const inner = this.expression(depth + 1);
          this.expect(closers[t.op]);
          return inner;
        }
        if (t.op === '|') {
          const inner = this.expression(depth + 1);
          this.expect('|');
          return { k: 'fn', name: 'abs', a: inner };
        }
        throw new ParseError(`unexpected ${t.op}`);
    }
  }

  // sin x, sin(x), sin^2 x (the square of sin x), log_2 is not supported.
  private functionArgument(depth: number): Expr {
    if (this.isOp('(') || this.isOp('{')) return this.primary(depth + 1);
    return this.power(depth + 1);
  }

  // \frac's arguments: {..}, or a single token as LaTeX allows (\frac12).
  private group(depth: number): Expr {
    if (this.isOp('{')) return this.primary(depth + 1);
    const t = this.tokens[this.pos];
    if (t && t.t === 'num' && Number.isInteger(t.v)) {
      // \frac12 is \frac{1}{2}: LaTeX takes one digit per argument.
      const digits = String(t.v);
      if (digits.length === 1) {
        this.pos++;
        return { k: 'num', v: t.v };
      }
      if (digits.length === 2) {
        this.tokens.splice(this.pos, 1, { t: 'num', v: Number(digits[0]) }, { t: 'num', v: Number(digits[1]) });
        this.pos++;
        return { k: 'num', v: Number(digits[0]) };
      }
    }
    return this.primary(depth + 1);
  }

  // \sqrt{x}, \sqrt[3]{x}, sqrt(x), √x.
  private root(depth: number): Expr {
    if (this.isOp('[')) {
      this.pos++;
      const n = this.expression(depth + 1);
      this.expect(']');
      const radicand = this.group(depth);
      return { k: 'bin', op: '^', a: radicand, b: { k: 'bin', op: '/', a: { k: 'num', v: 1 }, b: n } };
    }
    return { k: 'fn', name: 'sqrt', a: this.group(depth) };
  }
}

// ---- evaluation ----

/** The variables an expression mentions, sorted. */
export function variablesOf(e: Expr): string[] {
  const names = new Set<string>();
  const walk = (n: Expr): void => {
    if (n.k === 'var') names.add(n.name);
    else if (n.k === 'neg' || n.k === 'fn') walk(n.a);
    else if (n.k === 'bin') {
      walk(n.a);
      walk(n.b);
    }
  };
  walk(e);
  return [...names].sort();
}

/** The value of `e` with the given variable values (NaN where undefined, like 1/0 - 1/0). */
export function evaluate(e: Expr, vars: Record<string, number> = {}): number {
  switch (e.k) {
    case 'num':
      return e.v;
    case 'var':
      return vars[e.name] ?? NaN;
    case 'neg':
      return -evaluate(e.a, vars);
    case 'fn':
      return applyFunction(e.name, evaluate(e.a, vars));
    case 'bin': {
      const a = evaluate(e.a, vars);
      const b = evaluate(e.b, vars);
      switch (e.op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          // Division by zero is undefined in an answer, not infinity.
          return b === 0 ? NaN : a / b;
        case '^':
          return power(a, b);
      }
    }
  }
}

// Real odd roots of negatives: (-8)^(1/3) is -2 in a math answer, not NaN.
function power(a: number, b: number): number {
  if (a < 0 && !Number.isInteger(b)) {
    const inv = 1 / b;
    if (Number.isInteger(Math.round(inv * 1e9) / 1e9) && Math.round(inv) % 2 !== 0) return -Math.pow(-a, b);
  }
  return Math.pow(a, b);
}

function applyFunction(name: FunctionName, x: number): number {
  switch (name) {
    case 'sqrt':
      return Math.sqrt(x);
    case 'sin':
      return Math.sin(x);
    case 'cos':
      return Math.cos(x);
    case 'tan':
      return Math.tan(x);
    case 'sec':
      return 1 / Math.cos(x);
    case 'csc':
      return 1 / Math.sin(x);
    case 'cot':
      return 1 / Math.tan(x);
    case 'arcsin':
      return Math.asin(x);
    case 'arccos':
      return Math.acos(x);
    case 'arctan':
      return Math.atan(x);
    case 'ln':
      return Math.log(x);
    case 'log':
      return Math.log10(x);
    case 'exp':
      return Math.exp(x);
    case 'abs':
      return Math.abs(x);
  }
}
