// The report's study section, for runs whose mid-training forks into branches that each go on
// to RL: per branch, held-out accuracy before and after RL and the gain, response length at
// the start and end of RL (verbosity), the unstable RL steps by kind, and a table ranking the
// branches as RL starting points. Branches named "<mixture>_<n>" (n a number) are replicates of one
// mixture (same spec, their own decay data and sampling): they are ranked together, by their
// mean, with the spread shown, so a difference can be told from noise.
import type { ReportEntry } from './html';
import { escapeXml, formatNumber } from './svg';

/** What makes a step unstable (all relative to the branch's own recent steps). */
export const instability = {
  /** Steps of history a step is compared with. */
  window: 10,
  /** A gradient norm above this multiple of the window's median. */
  gradNormSpike: 3,
  /** A loss this many median absolute deviations (of the window) away from its median. */
  lossSpike: 6,
  /** Entropy below this share of its median over the stage's first tenth. */
  entropyCollapse: 0.5,
  /** Smoothed reward below its best so far by more than this share of the best. */
  rewardFall: 0.3,
};

export interface UnstableSteps {
  gradNorm: number;
  loss: number;
  entropy: number;
  rewardFall: number;
  /** Steps with at least one of the above. */
  total: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Counts the unstable steps of one branch's RL stage (its training entries, in step order). */
export function unstableSteps(steps: ReportEntry[]): UnstableSteps {
  const w = instability.window;
  const series = (key: string) => steps.map((e) => e.values[key]);
  const grad = series('grad_norm');
  const loss = series('loss');
  const entropy = series('entropy');
  const reward = series('reward/total');
  const early = entropy.slice(0, Math.max(1, Math.round(entropy.length / 10))).filter(Number.isFinite);
  const entropyFloor = early.length ? instability.entropyCollapse * median(early) : -Infinity;
  const out: UnstableSteps = { gradNorm: 0, loss: 0, entropy: 0, rewardFall: 0, total: 0 };
  let best = -Infinity;
  for (let i = 0; i < steps.length; i++) {
    const before = (xs: number[]) => xs.slice(Math.max(0, i - w), i).filter(Number.isFinite);
    const g = before(grad);
    const gradSpike = g.length >= 3 && grad[i] > instability.gradNormSpike * median(g);
    const l = before(loss);
    const mad = l.length >= 3 ? median(l.map((x) => Math.abs(x - median(l)))) : NaN;
    const lossSpike = l.length >= 3 && Math.abs(loss[i] - median(l)) > instability.lossSpike * Math.max(mad, 1e-6);
    const collapsed = Number.isFinite(entropy[i]) && entropy[i] < entropyFloor;
    const recent = reward.slice(Math.max(0, i - w + 1), i + 1).filter(Number.isFinite);
    const smooth = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : NaN;
    const fell = i >= w && best > 0 && smooth < best * (1 - instability.rewardFall);
    if (i >= w - 1 && Number.isFinite(smooth)) best = Math.max(best, smooth);
    out.gradNorm += gradSpike ? 1 : 0;
    out.loss += lossSpike ? 1 : 0;
    out.entropy += collapsed ? 1 : 0;
    out.rewardFall += fell ? 1 : 0;
    out.total += gradSpike || lossSpike || collapsed || fell ? 1 : 0;
  }
  return out;
}

export interface BranchResult {
  branch: string;
  /** Held-out greedy accuracy after mid-training, before RL (the evaluation just before the RL stage) and after it. */
  midtrain?: number;
  before?: number;
  after?: number;
  /** Mean response length over the first and last tenth of RL's steps. */
  lengthStart?: number;
  lengthEnd?: number;
  unstable: UnstableSteps;
  steps: number;
}

/** The stage trained on a reward (GRPO), if the run has one. */
function rlStage(history: ReportEntry[]): string | undefined {
  return history.find((e) => e.kind !== 'eval' && 'reward/total' in e.values)?.stage;
}

const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

/** Per branch that went through RL, what it started from, what RL made of it, and how stably. */
export function branchResults(history: ReportEntry[]): BranchResult[] {
  const rl = rlStage(history);
  if (!rl) return [];
  const branches = [...new Set(history.filter((e) => e.stage === rl).map((e) => e.branch ?? ''))];
  return branches.map((branch) => {
    const mine = history.filter((e) => (e.branch ?? '') === branch);
    const evals = mine.filter((e) => e.kind === 'eval');
    const steps = mine.filter((e) => e.kind !== 'eval' && e.stage === rl).sort((a, b) => a.step - b.step);
    const firstRlEval = evals.findIndex((e) => e.stage === rl);
    const beforeRl = (firstRlEval < 0 ? evals : evals.slice(0, firstRlEval)).filter((e) => e.stage !== rl);
    const rlEvals = evals.filter((e) => e.stage === rl).sort((a, b) => a.step - b.step);
    const midtrain = evals.filter((e) => e.stage === evals[0]?.stage).pop();
    const tenth = Math.max(1, Math.round(steps.length / 10));
    const lengths = steps.map((e) => e.values.response_length).filter(Number.isFinite);
    return {
      branch,
      midtrain: midtrain?.values.accuracy,
      before: beforeRl[beforeRl.length - 1]?.values.accuracy,
      after: rlEvals[rlEvals.length - 1]?.values.accuracy,
      lengthStart: meanOf(lengths.slice(0, tenth)),
      lengthEnd: meanOf(lengths.slice(-tenth)),
      unstable: unstableSteps(steps),
      steps: steps.length,
    };
  });
}

export interface RankedMixture {
  mixture: string;
  replicates: BranchResult[];
  /** Means over the replicates, and the range of the RL gain and of the final accuracy. */
  after?: number;
  gain?: number;
  afterRange?: [number, number];
  gainRange?: [number, number];
  unstable: number;
}

const range = (xs: number[]): [number, number] | undefined => (xs.length ? [Math.min(...xs), Math.max(...xs)] : undefined);

/** Branches grouped by mixture ("<mixture>_<n>"), best RL starting point first (final accuracy, then gain). */
export function rankMixtures(results: BranchResult[]): RankedMixture[] {
  const groups = new Map<string, BranchResult[]>();
  for (const r of results) {
    const name = r.branch.replace(/_\d+$/, '');
    groups.set(name, [...(groups.get(name) ?? []), r]);
  }
  const ranked = [...groups].map(([mixture, replicates]) => {
    const afters = replicates.map((r) => r.after).filter((x): x is number => x !== undefined);
    const gains = replicates.filter((r) => r.after !== undefined && r.before !== undefined).map((r) => r.after! - r.before!);
    return { mixture, replicates, after: meanOf(afters), gain: meanOf(gains), afterRange: range(afters), gainRange: range(gains), unstable: meanOf(replicates.map((r) => r.unstable.total)) ?? 0 };
  });
  return ranked.sort((a, b) => (b.after ?? -1) - (a.after ?? -1) || (b.gain ?? -1) - (a.gain ?? -1));
}

const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const pts = (x: number | undefined) => (x === undefined ? '–' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`);
const spread = (r: [number, number] | undefined, n: number, show: (x: number) => string) => (r && n > 1 ? ` <span class="spread">(${show(r[0])} to ${show(r[1])})</span>` : '');
const len = (x: number | undefined) => (x === undefined ? '–' : formatNumber(Number(x.toFixed(1))));

/** The section: the ranking, then every branch's figures. Empty for runs with fewer than two RL branches. */
export function studySection(history: ReportEntry[]): string {
  const results = branchResults(history);
  if (results.length < 2) return '';
  const ranked = rankMixtures(results);
  const rankRows = ranked
    .map((m, i) => {
      const n = m.replicates.length;
      return `<tr><td>${i + 1}</td><th>${escapeXml(m.mixture || '(main)')}</th><td>${n}</td><td>${pct(m.after)}${spread(m.afterRange, n, pct)}</td><td>${pts(m.gain)} pts${spread(m.gainRange, n, pts)}</td><td>${formatNumber(Number(m.unstable.toFixed(1)))}</td></tr>`;
    })
    .join('');
  const branchRows = results
    .map(
      (r) =>
        `<tr><th>${escapeXml(r.branch || '(main)')}</th><td>${pct(r.midtrain)}</td><td>${pct(r.before)}</td><td>${pct(r.after)}</td><td>${r.before !== undefined && r.after !== undefined ? `${pts(r.after - r.before)} pts` : '–'}</td><td>${len(r.lengthStart)} → ${len(r.lengthEnd)}</td><td>${r.unstable.total} of ${r.steps}</td><td>${r.unstable.gradNorm}</td><td>${r.unstable.loss}</td><td>${r.unstable.entropy}</td><td>${r.unstable.rewardFall}</td></tr>`,
    )
    .join('');
  const t = instability;
  return `<h2>Branches as RL starting points</h2>
<table class="ranking"><thead><tr><th>rank</th><th>mixture</th><th>replicates</th><th>accuracy after RL</th><th>RL gain</th><th>unstable steps (mean)</th></tr></thead><tbody>${rankRows}</tbody></table>
<table class="branches"><thead><tr><th rowspan="2">branch</th><th rowspan="2">after mid-training</th><th rowspan="2">before RL</th><th rowspan="2">after RL</th><th rowspan="2">RL gain</th><th rowspan="2">response length (RL start → end)</th><th colspan="5">unstable RL steps</th></tr><tr><th>any</th><th>grad-norm spike</th><th>loss spike</th><th>entropy collapse</th><th>reward fall</th></tr></thead><tbody>${branchRows}</tbody></table>
<p class="meta">Accuracy: held-out, greedy. Ranked by mean accuracy after RL, then gain; the spread of replicates (branches named &lt;mixture&gt;_&lt;n&gt;) in brackets. A step is unstable when its gradient norm exceeds ${t.gradNormSpike}× the median of the ${t.window} steps before it, its loss lies more than ${t.lossSpike} median absolute deviations from theirs, its entropy falls below ${t.entropyCollapse * 100}% of the first tenth's median, or the reward (mean of the last ${t.window} steps) falls more than ${t.rewardFall * 100}% below its best.</p>`;
}
