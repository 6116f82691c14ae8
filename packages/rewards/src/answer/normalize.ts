// Turns a final answer as written ("$x = \dfrac{1}{2}$.", "\text{12 cm}", "Answer: 45^\circ")
// into the bare mathematical text the comparisons work on ("\frac{1}{2}", "12", "45").
// Every rule strips notation that cannot change the value; nothing here guesses.
import { replaceCommandGroups } from '@temper/data';
import { parseNumberLiteral } from './numbers';

const spacingCommands = /\\(?:displaystyle|textstyle|[,;:! ]|quad|qquad|limits)(?![A-Za-z])/g;
// \left( is (, \right. is nothing, \big| is |.
const sizing = /\\(?:left|right|[Bb]igg?[lr]?)(?![A-Za-z])\s*\.?/g;
const textCommands = ['text', 'textbf', 'textit', 'textrm', 'mathrm', 'mathbf', 'mathit', 'operatorname', 'mbox', 'boxed'];
const leadingPhrases = /^(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)\s*|therefore,?\s+|thus,?\s+|so,?\s+)/i;
const degreeMarks = /\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree)/g;

// Units a number may carry in an answer; one letter ones only where they cannot be a variable.
const oneLetterUnits = new Set(['m', 's', 'g', 'h', 'l', 'L', 'K', 'N', 'J', 'W', 'V']);

/** The bare form of an answer, for comparison. */
export function normalizeAnswer(raw: string): string {
  let s = raw.trim();
  s = stripMathDelimiters(s);
  s = s.replace(spacingCommands, ' ').replace(/~/g, ' ');
  s = s.replace(sizing, '');
  s = s.replace(/\\[dt]frac/g, '\\frac').replace(/\\le(?![A-Za-z])/g, '\\leq').replace(/\\ge(?![A-Za-z])/g, '\\geq');
  s = s.replace(/\\%/g, '%').replace(/\\\$/g, '').replace(/\$/g, '');
  s = s.replace(degreeMarks, '');
  s = dropTextUnits(s);
  for (const cmd of textCommands) s = replaceCommandGroups(s, cmd, (c) => c);
  s = s.replace(/\s+/g, ' ').trim();
  s = s.replace(leadingPhrases, '');
  s = s.replace(/[.。]\s*$/, '').trim();
  s = stripAssignment(s);
  s = dropUnitWords(s);
  return s;
}

function stripMathDelimiters(s: string): string {
  for (;;) {
    const before = s;
    if (s.startsWith('$$') && s.endsWith('$$') && s.length > 4) s = s.slice(2, -2).trim();
    else if (s.startsWith('$') && s.endsWith('$') && s.length > 2) s = s.slice(1, -1).trim();
    else if (s.startsWith('\\(') && s.endsWith('\\)')) s = s.slice(2, -2).trim();
    else if (s.startsWith('\\[') && s.endsWith('\\]')) s = s.slice(2, -2).trim();
    if (s === before) return s;
  }
}

// "12\text{ cm}" and "5 \mathrm{kg}": text after a number is a unit, not part of the value.
function dropTextUnits(s: string): string {
  const m = /^(.*?\d)\s*\\(?:text|mathrm|mbox)\s*\{\s*[A-Za-z][A-Za-z ./^{}0-9]*\}\s*(\^\s*\{?\d\}?)?$/.exec(s);
  if (m && parseNumberLiteral(m[1].replace(/\\%/g, '%')) !== null) return m[1];
  return s;
}

// "x = 5", "\theta = 30", "x \in [0, 1]": the value is the right-hand side. Only a
// single name on the left, so equations like "x + y = 5" are left alone.
export function stripAssignment(s: string): string {
  const m = /^(?:[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?|\\[A-Za-z]+)\s*(?:=|:=|\\in(?![A-Za-z]))\s*(.+)$/.exec(s);
  if (m && !m[1].includes('=')) return m[1].trim();
  return s;
}

// "12 apples", "3.5 cm^2", "20 km/h": trailing words after a plain number.
function dropUnitWords(s: string): string {
  const m = /^(.*?\d%?)\s*([A-Za-z]+)(?:\s*\^\s*\{?\d\}?|\s*\/\s*[A-Za-z]+|\s+[A-Za-z]+)*$/.exec(s);
  if (!m) return s;
  if (!(m[2].length >= 2 || oneLetterUnits.has(m[2]))) return s;
  if (m[1] !== s && parseNumberLiteral(m[1]) !== null && !/^(?:sin|cos|tan|ln|log|exp|sqrt|pi|e)$/i.test(m[2])) return m[1];
  return s;
}
