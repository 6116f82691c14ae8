// Checking a countdown answer: an arithmetic expression over the given numbers that equals
// the target. Answers come from a policy being optimised to get reward, so this is written
// against gaming: it parses (never evaluates code), allows only + - * / and parentheses over
// integer literals, checks the literals against the given numbers before computing anything
// (so no expression can be large: it is built from the given numbers, each at most once),
// and computes with exact rationals so 7/2*2 is 7 and rounding cannot fake a hit.

export interface CountdownVerdict {
  ok: boolean;
  /** Why the answer failed; absent when ok. */
  reason?: string;
  /** The exact value as "p" or "p/q", when the expression could be computed. */
  value?: string;
}

export interface CountdownRules {
  /** Every given number must appear (each exactly once); otherwise at most once. Default true. */
  mustUseAll?: boolean;
}

const maxChars = 200;
const maxDepth = 32;

type Node = { k: 'num'; v: bigint } | { k: 'bin'; op: '+' | '-' | '*' | '/'; a: Node; b: Node };

class Reject extends Error {}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c >= '0' && c <= '9') {
      let j = i;
      while (j < text.length && text[j] >= '0' && text[j] <= '9') j++;
      if (j - i > 12) throw new Reject(`number ${text.slice(i, j)} is not one of the given numbers`);
      tokens.push(text.slice(i, j));
      i = j;
    } else if (c === '*' && text[i + 1] === '*') {
      throw new Reject('operator ** is not allowed (only + - * /)');
    } else if ('+-*/()'.includes(c)) {
      tokens.push(c);
      i++;
    } else if (c === '×' || c === '÷') {
      tokens.push(c === '×' ? '*' : '/');
      i++;
    } else if (c === '^') {
      throw new Reject('operator ^ is not allowed (only + - * /)');
    } else if (c === '.') {
      throw new Reject('only whole numbers are allowed');
    } else {
      throw new Reject(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  return tokens;
}

function parse(tokens: string[]): Node {
  let pos = 0;
  const peek = () => tokens[pos];
  const expr = (depth: number): Node => {
    if (depth > maxDepth) throw new Reject('expression is nested too deeply');
    let left = term(depth);
    while (peek() === '+' || peek() === '-') {
      const op = tokens[pos++] as '+' | '-';
      left = { k: 'bin', op, a: left, b: term(depth) };
    }
    return left;
  };
  const term = (depth: number): Node => {
    let left = factor(depth);
    while (peek() === '*' || peek() === '/') {
      const op = tokens[pos++] as '*' | '/';
      left = { k: 'bin', op, a: left, b: factor(depth) };
    }
    return left;
  };
  const factor = (depth: number): Node => {
    const t = tokens[pos++];
    if (t === undefined) throw new Reject('expression ends too early');
    if (t === '(') {
      const inner = expr(depth + 1);
      if (tokens[pos++] !== ')') throw new Reject('missing )');
      return inner;
    }
    if (t === '-' || t === '+') throw new Reject('unary signs are not allowed');
    if (/^\d+$/.test(t)) return { k: 'num', v: BigInt(t) };
    throw new Reject(`unexpected ${t}`);
  };
  const tree = expr(0);
  if (pos !== tokens.length) throw new Reject(`unexpected ${tokens[pos]}`);
  return tree;
}

function literals(node: Node, out: bigint[] = []): bigint[] {
  if (node.k === 'num') out.push(node.v);
  else {
    literals(node.a, out);
    literals(node.b, out);
  }
  return out;
}

type Rational = { p: bigint; q: bigint };

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function norm(p: bigint, q: bigint): Rational {
  if (q < 0n) [p, q] = [-p, -q];
  const g = gcd(p, q) || 1n;
  return { p: p / g, q: q / g };
}

function evaluate(node: Node): Rational {
  if (node.k === 'num') return { p: node.v, q: 1n };
  const a = evaluate(node.a);
  const b = evaluate(node.b);
  switch (node.op) {
    case '+':
      return norm(a.p * b.q + b.p * a.q, a.q * b.q);
    case '-':
      return norm(a.p * b.q - b.p * a.q, a.q * b.q);
    case '*':
      return norm(a.p * b.p, a.q * b.q);
    case '/':
      if (b.p === 0n) throw new Reject('division by zero');
      return norm(a.p * b.q, a.q * b.p);
  }
}

/** Whether `expression` reaches `target` from `numbers` under the countdown rules. */
export function verifyCountdown(expression: string, numbers: readonly number[], target: number, rules: CountdownRules = {}): CountdownVerdict {
  const mustUseAll = rules.mustUseAll ?? true;
  if (typeof expression !== 'string' || expression.trim().length === 0) return { ok: false, reason: 'empty answer' };
  if (expression.length > maxChars) return { ok: false, reason: `answer longer than ${maxChars} characters` };
  try {
    // An answer written as an equation ("3*4-5=7") is judged by its left side.
    const eq = expression.split('=');
    if (eq.length > 2) throw new Reject('more than one =');
    const tree = parse(tokenize(eq[0]));

    const available = new Map<string, number>();
    for (const n of numbers) available.set(String(n), (available.get(String(n)) ?? 0) + 1);
    for (const lit of literals(tree)) {
      const key = lit.toString();
      const left = available.get(key) ?? 0;
      if (left === 0) {
        throw new Reject(numbers.includes(Number(lit)) ? `number ${key} is used more times than given` : `number ${key} is not one of the given numbers`);
      }
      available.set(key, left - 1);
    }
    if (mustUseAll) {
      const unused = [...available.entries()].filter(([, c]) => c > 0).map(([n]) => n);
      if (unused.length > 0) throw new Reject(`not every number is used (unused: ${unused.join(', ')})`);
    }

    const v = evaluate(tree);
    const value = v.q === 1n ? v.p.toString() : `${v.p}/${v.q}`;
    if (eq.length === 2) {
      const claimed = eq[1].trim();
      if (claimed !== String(target)) return { ok: false, reason: `claims ${claimed}, target is ${target}`, value };
    }
    if (v.q !== 1n || v.p !== BigInt(target)) return { ok: false, reason: `evaluates to ${value}, not ${target}`, value };
    return { ok: true, value };
  } catch (err) {
    if (err instanceof Reject) return { ok: false, reason: err.message };
    throw err;
  }
}

export interface CountdownProblem {
  numbers: number[];
  target: number;
}

/**
 * A countdown problem from its written form: "9,4=13" (the numbers, then the target), or a
 * solution such as "9+4" (its literals are the numbers, its value the target: what the
 * built-in task gives as the answer). Null when the text is neither, or a solution does not
 * come to a positive whole number.
 */
export function parseCountdownProblem(text: string): CountdownProblem | null {
  const listed = /^\s*(\d+(?:\s*,\s*\d+)*)\s*=\s*(\d+)\s*$/.exec(text);
  if (listed) return { numbers: listed[1].split(',').map((n) => Number(n.trim())), target: Number(listed[2]) };
  if (text.length > maxChars) return null;
  try {
    const tree = parse(tokenize(text));
    const v = evaluate(tree);
    if (v.q !== 1n || v.p < 1n || v.p > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    return { numbers: literals(tree).map(Number), target: Number(v.p) };
  } catch (err) {
    if (err instanceof Reject) return null;
    throw err;
  }
}
