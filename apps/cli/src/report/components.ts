// The report's reward-components section: for each stage trained on a reward (GRPO), each
// component on its own scale over the steps, the share of completions each scorer flag (a hack
// guard, no_answer, …) was raised on, and two tables: how much each component moved and by which
// step it had made half of that move (what the policy learned first), and when each flag first
// came up often (what it learned to game first, if anything).
import type { ReportEntry } from './html';
import { escapeXml, formatNumber, lineChart, Series } from './svg';

/** A flag raised on at least this share of a step's completions (smoothed) "came up often". */
export const flagOnsetShare = 0.1;

interface Track {
  stage: string;
  branch: string;
  points: [number, number][];
}

/** Per (stage, branch), the training steps' values of `key`, in step order. */
function tracks(history: ReportEntry[], key: string): Track[] {
  const by = new Map<string, Track>();
  for (const e of history) {
    if (e.kind === 'eval' || !(key in e.values)) continue;
    const id = `${e.stage}\u0000${e.branch ?? ''}`;
    if (!by.has(id)) by.set(id, { stage: e.stage, branch: e.branch ?? '', points: [] });
    by.get(id)!.points.push([e.step, e.values[key]]);
  }
  for (const t of by.values()) t.points.sort((a, b) => a[0] - b[0]);
  return [...by.values()];
}

// A tenth of the steps (at least one) smooths a step's batch noise without hiding a trend.
const windowOf = (n: number) => Math.max(1, Math.round(n / 10));

function smoothed(points: [number, number][]): [number, number][] {
  const w = windowOf(points.length);
  return points.map(([step], i) => {
    const from = Math.max(0, i - w + 1);
    const slice = points.slice(from, i + 1);
    return [step, slice.reduce((a, p) => a + p[1], 0) / slice.length];
  });
}

const meanOf = (points: [number, number][]) => points.reduce((a, p) => a + p[1], 0) / Math.max(1, points.length);

export interface ComponentTrend {
  stage: string;
  branch: string;
  component: string;
  /** Mean over the first and the last tenth of the steps. */
  start: number;
  end: number;
  /** The first step by which the smoothed value had made half its move; undefined when it hardly moved. */
  halfway?: number;
}

/** How each reward component moved over its stage. */
export function componentTrends(history: ReportEntry[]): ComponentTrend[] {
  const keys = rewardKeys(history);
  const out: ComponentTrend[] = [];
  for (const key of keys) {
    for (const t of tracks(history, key)) {
      const w = windowOf(t.points.length);
      const start = meanOf(t.points.slice(0, w));
      const end = meanOf(t.points.slice(-w));
      const move = end - start;
      const halfway = Math.abs(move) < 0.02 ? undefined : smoothed(t.points).find(([, v]) => (move > 0 ? v >= start + move / 2 : v <= start + move / 2))?.[0];
      out.push({ stage: t.stage, branch: t.branch, component: key.slice('reward/'.length), start, end, halfway });
    }
  }
  return out;
}

export interface FlagOnset {
  stage: string;
  branch: string;
  flag: string;
  start: number;
  end: number;
  peak: number;
  /** The first step whose smoothed share reached flagOnsetShare; undefined: never. */
  onset?: number;
}

/** When each scorer flag came up, per stage and branch, earliest onset first. */
export function flagOnsets(history: ReportEntry[]): FlagOnset[] {
  const keys = [...new Set(history.filter((e) => e.kind !== 'eval').flatMap((e) => Object.keys(e.values).filter((k) => k.startsWith('flag/'))))];
  const out: FlagOnset[] = [];
  for (const key of keys) {
    for (const t of tracks(history, key)) {
      const w = windowOf(t.points.length);
      const s = smoothed(t.points);
      out.push({
        stage: t.stage,
        branch: t.branch,
        flag: key.slice('flag/'.length),
        start: meanOf(t.points.slice(0, w)),
        end: meanOf(t.points.slice(-w)),
        peak: Math.max(...s.map((p) => p[1])),
        onset: s.find(([, v]) => v >= flagOnsetShare)?.[0],
      });
    }
  }
  return out.sort((a, b) => (a.onset ?? Infinity) - (b.onset ?? Infinity));
}

function rewardKeys(history: ReportEntry[]): string[] {
  return [...new Set(history.filter((e) => e.kind !== 'eval').flatMap((e) => Object.keys(e.values).filter((k) => k.startsWith('reward/') && k !== 'reward/total')))];
}

const where = (stage: string, branch: string) => escapeXml(branch ? `${stage} · ${branch}` : stage);
const num = (x: number) => formatNumber(Number(x.toFixed(4)));

/** One chart per component and one of the flags, per stage trained on a reward. */
export function componentCharts(history: ReportEntry[]): string[] {
  const out: string[] = [];
  const stages = [...new Set(history.filter((e) => e.kind !== 'eval' && Object.keys(e.values).some((k) => k.startsWith('reward/'))).map((e) => e.stage))];
  for (const stage of stages) {
    const mine = history.filter((e) => e.stage === stage);
    for (const key of rewardKeys(mine)) {
      const series: Series[] = tracks(mine, key).map((t) => ({ name: t.branch || stage, points: t.points }));
      out.push(lineChart(series, { title: `${key.slice('reward/'.length)} (component): ${stage}`, xLabel: 'step', width: 300, height: 200 }));
    }
    const flags = [...new Set(mine.filter((e) => e.kind !== 'eval').flatMap((e) => Object.keys(e.values).filter((k) => k.startsWith('flag/'))))];
    if (flags.length > 0) {
      const series = flags.flatMap((key) => tracks(mine, key).map((t) => ({ name: `${key.slice('flag/'.length)}${t.branch ? ` · ${t.branch}` : ''}`, points: t.points })));
      out.push(lineChart(series, { title: `Share of completions flagged: ${stage}`, xLabel: 'step' }));
    }
  }
  return out;
}

/** The two tables and a sentence naming the first flag to come up often. */
export function componentTables(history: ReportEntry[]): string {
  const trends = componentTrends(history);
  if (trends.length === 0) return '';
  const trendRows = trends
    .map((t) => `<tr><td>${where(t.stage, t.branch)}</td><th>${escapeXml(t.component)}</th><td>${num(t.start)}</td><td>${num(t.end)}</td><td>${num(t.end - t.start)}</td><td>${t.halfway ?? '–'}</td></tr>`)
    .join('');
  const onsets = flagOnsets(history);
  const first = onsets.find((f) => f.onset !== undefined);
  const verdict = first
    ? `First flag to come up on ${(100 * flagOnsetShare).toFixed(0)}% of a step's completions: <b>${escapeXml(first.flag)}</b> at step ${first.onset} (${where(first.stage, first.branch)}).`
    : `No flag came up on ${(100 * flagOnsetShare).toFixed(0)}% of a step's completions.`;
  const flagRows = onsets
    .map((f) => `<tr><td>${where(f.stage, f.branch)}</td><th>${escapeXml(f.flag)}</th><td>${(100 * f.start).toFixed(1)}%</td><td>${(100 * f.end).toFixed(1)}%</td><td>${(100 * f.peak).toFixed(1)}%</td><td>${f.onset ?? '–'}</td></tr>`)
    .join('');
  return `<table class="components"><thead><tr><th>stage</th><th>component</th><th>start</th><th>end</th><th>change</th><th>half the change by step</th></tr></thead><tbody>${trendRows}</tbody></table>
<p class="verdict">${verdict}</p>
${flagRows ? `<table class="flags"><thead><tr><th>stage</th><th>flag</th><th>start</th><th>end</th><th>peak</th><th>first ≥ ${(100 * flagOnsetShare).toFixed(0)}% at step</th></tr></thead><tbody>${flagRows}</tbody></table>` : ''}
<p class="meta">Start and end: means over the first and last tenth of the steps; the steps are smoothed over a tenth of them for "half the change" and "first ≥".</p>`;
}
