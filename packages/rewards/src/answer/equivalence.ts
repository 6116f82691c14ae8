// Deciding whether a final answer means the same as the reference. In order:
// multiple-choice letters; identical text after normalisation; lists, tuples, intervals
// and sets element by element; numbers (integers exactly, everything else within a
// tolerance, percentages also as fractions); expressions by value, at random points when
// they have variables; and text answers ("\text{Monday}") case-insensitively.
import { choiceMatches, referenceChoice } from './choice';
import { evaluate, Expr, parseExpression, variablesOf } from './expression';
import { NumberLiteral, parseNumberLiteral } from './numbers';
import { hedgeReason, listJoins } from './hedging';
import { normalizeAnswer, stripAssignment } from './normalize';

export interface EquivalenceOptions {
  /** |a - b| <= relTolerance * max(|a|, |b|) counts as equal (non-integers). */
  relTolerance: number;
  /** |a - b| <= absTolerance counts as equal (non-integers). */
  absTolerance: number;
  /** 25% also matches 0.25 (and 25). */
  percentAsFraction: boolean;
  /** How many random points two expressions with variables must agree at. */
  samplePoints: number;
  /** Letters that are multiple-choice options when the reference is one of them. */
  choices: string;
}

export const defaultEquivalence: EquivalenceOptions = {
  relTolerance: 1e-6,
  absTolerance: 1e-9,
  percentAsFraction: true,
  samplePoints: 5,
  choices: 'ABCDE',
};

/** True when `answer` (as extracted) means the same as `reference`. */
export function isEquivalent(answer: string, reference: string, opts: EquivalenceOptions = defaultEquivalence): boolean {
  const a = normalizeAnswer(answer);
  const r = normalizeAnswer(reference);
  if (a === '' || r === '') return false;
  if (hedgeReason(a, r)) return false;
  const letter = referenceChoice(r, opts.choices);
  if (letter) return choiceMatches(a, letter, opts.choices);
  return equivalentNormalized(a, r, opts, 0);
}

function equivalentNormalized(a: string, r: string, opts: EquivalenceOptions, depth: number): boolean {
  if (a === r) return true;
  if (depth > 4) return false;
  const plusMinus = /\\pm|±/;
  if (plusMinus.test(a) && plusMinus.test(r)) {
    // a ± b is the pair {a + b, a - b}: both signs must agree.
    return (['+', '-'] as const).every((s) => equivalentNormalized(a.replace(plusMinus, s), r.replace(plusMinus, s), opts, depth + 1));
  }
  const la = splitList(a);
  const lr = splitList(r);
  if (la.items.length > 1 || lr.items.length > 1 || la.open !== lr.open || la.close !== lr.close) {
    if (la.items.length === 1 && lr.items.length === 1 && isPlainGroup(la) && isPlainGroup(lr)) {
      return scalarEquivalent(la.items[0], lr.items[0], opts);
    }
    return listsEquivalent(la, lr, opts, depth);
  }
  return scalarEquivalent(la.items[0], lr.items[0], opts);
}

// ---- lists, tuples, intervals, sets ----

interface List {
  /** '(' '[' '{' for bracketed lists, '' for bare "1, 2"; ∪ for unions of intervals. */
  open: string;
  close: string;
  items: string[];
}

// (x) is just x in parentheses; only a list of one element in () or nothing is plain.
function isPlainGroup(l: List): boolean {
  return (l.open === '' || l.open === '(') && (l.close === '' || l.close === ')');
}

function splitList(s: string): List {
  // Hedges are refused before this; an "or" or "and" left here joins a list of solutions.
  s = s.replace(/\\\{/g, '{').replace(/\\\}/g, '}').replace(listJoins, ', ').trim();
  const unions = splitTopLevel(s, /\\cup|∪/y);
  if (unions.length > 1) return { open: '∪', close: '∪', items: unions };
  // 1,234 is one number, not the pair (1, 234).
  if (parseNumberLiteral(s) !== null) return { open: '', close: '', items: [s] };
  const first = s[0];
  const last = s[s.length - 1];
  if ('([{'.includes(first) && ')]}'.includes(last) && enclosesAll(s)) {
    const inner = s.slice(1, -1);
    return { open: first, close: last, items: splitTopLevel(inner, /,|;/y).map(stripAssignment) };
  }
  // "x = 2, y = 3": each element may name its variable.
  return { open: '', close: '', items: splitTopLevel(s, /,|;/y).map(stripAssignment) };
}

// The bracket at 0 closes at the very end (not "(1)+(2)").
function enclosesAll(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0 && i < s.length - 1) return false;
    }
  }
  return depth === 0;
}

function splitTopLevel(s: string, separator: RegExp): string[] {
  const items: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0) {
      separator.lastIndex = i;
      const m = separator.exec(s);
      if (m) {
        items.push(s.slice(from, i).trim());
        from = i + m[0].length;
        i = from - 1;
      }
    }
  }
  items.push(s.slice(from).trim());
  return items;
}

function listsEquivalent(a: List, r: List, opts: EquivalenceOptions, depth: number): boolean {
  if (a.items.length !== r.items.length) return false;
  if (a.items.some((x) => x === '')) return false;
  const unordered = a.open === '{' || r.open === '{' || a.open === '∪' || (a.open === '' && r.open === '');
  if (!unordered) {
    // [1, 2) and (1, 2] are different intervals; a bare "1, 2" may stand for either tuple.
    const bare = a.open === '' || r.open === '';
    if (!bare && (a.open !== r.open || a.close !== r.close)) return false;
    return a.items.every((x, i) => equivalentNormalized(x, r.items[i], opts, depth + 1));
  }
  if (a.open !== r.open && a.open !== '' && r.open !== '') return false;
  const unused = [...r.items];
  for (const x of a.items) {
    const j = unused.findIndex((y) => equivalentNormalized(x, y, opts, depth + 1));
    if (j < 0) return false;
    unused.splice(j, 1);
  }
  return true;
}

// ---- single values ----

function scalarEquivalent(a: string, r: string, opts: EquivalenceOptions): boolean {
  if (a === r) return a !== '';
  const na = parseNumberLiteral(a);
  const nr = parseNumberLiteral(r);
  if (na && nr) return numbersMatch(na, nr, opts);
  const ea = na ? literalExpr(na) : parseExpression(a);
  const er = nr ? literalExpr(nr) : parseExpression(r);
  if (ea && er && expressionsMatch(ea, er, opts, na?.percent || nr?.percent)) return true;
  return textKey(a) === textKey(r);
}

function literalExpr(n: NumberLiteral): Expr {
  return { k: 'num', v: n.value };
}

function numbersMatch(a: NumberLiteral, r: NumberLiteral, opts: EquivalenceOptions): boolean {
  // Two integers are equal or not: 1000001 is not 1000000 at any tolerance.
  if (a.integer !== undefined && r.integer !== undefined && a.percent === r.percent) return a.integer === r.integer;
  if (close(a.value, r.value, opts)) return true;
  if (!opts.percentAsFraction || a.percent === r.percent) return false;
  return a.percent ? close(a.value / 100, r.value, opts) : close(a.value, r.value / 100, opts);
}

function close(x: number, y: number, opts: EquivalenceOptions): boolean {
  if (Number.isNaN(x) || Number.isNaN(y)) return false;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  const diff = Math.abs(x - y);
  return diff <= opts.absTolerance || diff <= opts.relTolerance * Math.max(Math.abs(x), Math.abs(y));
}

function expressionsMatch(a: Expr, r: Expr, opts: EquivalenceOptions, percent = false): boolean {
  const va = variablesOf(a);
  const vr = variablesOf(r);
  if (va.join(',') !== vr.join(',')) return false;
  if (va.length === 0) {
    const x = evaluate(a);
    const y = evaluate(r);
    if (close(x, y, opts)) return true;
    return percent && opts.percentAsFraction && (close(x / 100, y, opts) || close(x, y / 100, opts));
  }
  return agreeAtRandomPoints(a, r, va, opts);
}

// Expressions with variables agree when they take the same value at several random
// points. The points are positive (so sqrt and log are defined) and seeded, so the same
// pair always gets the same verdict.
function agreeAtRandomPoints(a: Expr, r: Expr, vars: string[], opts: EquivalenceOptions): boolean {
  const random = mulberry32(0x5eed);
  let agreed = 0;
  for (let attempt = 0; attempt < opts.samplePoints * 3 && agreed < opts.samplePoints; attempt++) {
    const point: Record<string, number> = {};
    for (const v of vars) point[v] = 0.25 + 2.5 * random();
    const x = evaluate(a, point);
    const y = evaluate(r, point);
    const fx = Number.isFinite(x);
    const fy = Number.isFinite(y);
    if (!fx && !fy) continue; // undefined for both here (a pole, a log of a negative)
    if (fx !== fy || !close(x, y, { ...opts, relTolerance: Math.max(opts.relTolerance, 1e-9) })) return false;
    agreed++;
  }
  return agreed >= Math.min(2, opts.samplePoints);
}

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Text answers compare without spacing, and words ("Monday", "\text{yes}") without
// case; single letters keep theirs, since x and X are different variables. Braces stay:
// \frac{1}{23} and \frac{12}{3} differ only in them.
function textKey(s: string): string {
  const key = s.replace(/\s+/g, '');
  return /[A-Za-z]{3,}/.test(key.replace(/\\[A-Za-z]+/g, '')) ? key.toLowerCase() : key;
}
