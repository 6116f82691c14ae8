// Line charts as inline SVG: axes with rounded ticks, one polyline per series (a dot per point
// when a series is short), a legend. No scripts, no fonts or styles from outside the file.

export interface Series {
  name: string;
  points: [number, number][];
  /** Points only (evaluations), no line. */
  markers?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel?: string;
  width?: number;
  height?: number;
}

export const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round numbers covering [lo, hi]: about `count` ticks at 1, 2 or 5 × 10^k spacing. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

export function formatNumber(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(1).replace('e+', 'e');
  if (a >= 100) return x.toFixed(0);
  return String(Number(x.toPrecision(3)));
}

/** An SVG line chart; series without finite points are left out. */
export function lineChart(series: Series[], o: ChartOptions): string {
  const width = o.width ?? 560;
  const height = o.height ?? 300;
  const shown = series.map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) })).filter((s) => s.points.length > 0);
  // The legend sits between the title and the plot, three entries a row.
  const legendRows = Math.ceil(shown.length / 3);
  const m = { left: 58, right: 14, top: 30 + legendRows * 14, bottom: 44 };
  const all = shown.flatMap((s) => s.points);
  const title = `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`;
  if (all.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" class="chart empty" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${title}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#888">no data</text></svg>`;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = y0 === 0 ? [-1, 1] : [y0 - Math.abs(y0) * 0.1, y1 + Math.abs(y1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);
  const parts: string[] = [title];
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="#fff" stroke="#ccc"/>`);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 6}" y="${f(sy(t) + 4)}" text-anchor="end" font-size="11">${formatNumber(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    parts.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#666"/>`);
    parts.push(`<text x="${f(sx(t))}" y="${m.top + ph + 16}" text-anchor="middle" font-size="11">${formatNumber(t)}</text>`);
  }
  if (o.xLabel) parts.push(`<text x="${m.left + pw / 2}" y="${height - 6}" text-anchor="middle" font-size="11" fill="#444">${escapeXml(o.xLabel)}</text>`);
  shown.forEach((s, i) => {
    const color = palette[i % palette.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    if (!s.markers && pts.length > 1) {
      parts.push(`<polyline class="series" data-series="${escapeXml(s.name)}" data-points="${pts.length}" fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ')}"/>`);
    }
    if (s.markers || pts.length <= 30) {
      const r = s.markers ? 5 : 2.5;
      parts.push(`<g class="${s.markers ? 'series markers' : 'dots'}" data-series="${escapeXml(s.name)}" data-points="${pts.length}" fill="${color}">${pts.map(([x, y]) => `<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="${r}"/>`).join('')}</g>`);
    }
  });
  // Legend, in rows under the title.
  const legend = shown.map((s, i) => {
    const lx = m.left + 8 + (i % 3) * Math.floor(pw / 3);
    const ly = 36 + Math.floor(i / 3) * 14;
    return `<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${palette[i % palette.length]}"/><text x="${lx + 14}" y="${ly + 1}" font-size="11">${escapeXml(s.name)}</text>`;
  });
  parts.push(`<g class="legend">${legend.join('')}</g>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">${parts.join('')}</svg>`;
}
