// Brace matching for LaTeX-ish text: \boxed{...} and \text{...} hold nested braces
// ({\frac{1}{2}}), which no regular expression can pair up reliably. Datasets read their
// reference answers with it (MATH's last \boxed{}), and rewards their completions' answers.

/**
 * Index just past the '}' that closes the '{' at `open`, or -1 when it never closes.
 * Escaped braces (\{ \}) do not count.
 */
export function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 /* \ */) {
      i++; // skip the escaped character
    } else if (c === 123 /* { */) {
      depth++;
    } else if (c === 125 /* } */) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * For every '{' in `s`, the index just past its closing '}' (-1 when it never closes),
 * in one pass: scanning from each opening brace separately would be quadratic on a
 * completion made of thousands of unclosed "\boxed{".
 */
export function braceTable(s: string): Map<number, number> {
  const table = new Map<number, number>();
  const open: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 /* \ */) {
      i++;
    } else if (c === 123 /* { */) {
      open.push(i);
      table.set(i, -1);
    } else if (c === 125 /* } */ && open.length > 0) {
      table.set(open.pop()!, i + 1);
    }
  }
  return table;
}

/**
 * Replaces every `\name{content}` with what `replace` makes of the content (nested
 * occurrences first, as they are found inside the content).
 */
export function replaceCommandGroups(s: string, name: string, replace: (content: string) => string): string {
  const marker = `\\${name}`;
  let out = '';
  let from = 0;
  for (;;) {
    const at = s.indexOf(marker, from);
    if (at < 0) return out + s.slice(from);
    let open = at + marker.length;
    // \text is not \textbf: the name must end here.
    if (/[A-Za-z]/.test(s[open] ?? '')) {
      out += s.slice(from, open);
      from = open;
      continue;
    }
    while (s[open] === ' ') open++;
    if (s[open] !== '{') {
      out += s.slice(from, open);
      from = open;
      continue;
    }
    const end = matchBrace(s, open);
    if (end < 0) return out + s.slice(from);
    out += s.slice(from, at) + replace(replaceCommandGroups(s.slice(open + 1, end - 1), name, replace));
    from = end;
  }
}

/**
 * The content of the last \boxed{...} (or \fbox{...}) in `s`, nested braces kept, or
 * undefined when there is none that closes.
 */
export function lastBoxed(s: string): string | undefined {
  let found: string | undefined;
  for (const m of s.matchAll(/\\(?:boxed|fbox)\s*\{/g)) {
    const open = m.index + m[0].length - 1;
    const end = matchBrace(s, open);
    if (end > 0) found = s.slice(open + 1, end - 1);
  }
  return found;
}
