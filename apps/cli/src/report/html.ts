// A run's report as one self-contained HTML file: inline SVG plots of the per-step metrics
// (reward and its components, accuracy, response length, KL, the rollout/training mismatch,
// learning rate, loss), the table of evaluations, each reward component and scorer flag on its
// own (components.ts), the branches ranked as RL starting points (study.ts), the branch
// comparison (which mid-training branch made the better starting point) and, for multi-turn
// rollouts, turns per rollout and tool-call success. Everything is in the file: it opens in a
// browser without network access.
import { componentCharts, componentTables } from './components';
import { studySection } from './study';
import { escapeXml, formatNumber, lineChart, Series } from './svg';

export interface ReportEntry {
  stage: string;
  branch?: string;
  step: number;
  /** '' (a training step) or 'eval'. */
  kind?: string;
  values: Record<string, number>;
}

export interface ReportInput {
  run_id: string;
  name: string;
  state: string;
  error?: string;
  history: ReportEntry[];
}

const label = (stage: string, branch?: string) => (branch ? `${stage} · ${branch}` : stage);

/** Series of one metric from training steps, one per (stage, branch) that has it. */
function metricSeries(history: ReportEntry[], key: string, filter: (e: ReportEntry) => boolean = () => true, name?: (e: ReportEntry) => string): Series[] {
  const by = new Map<string, Series>();
  for (const e of history) {
    if (e.kind === 'eval' || !filter(e) || !(key in e.values)) continue;
    const n = name ? name(e) : label(e.stage, e.branch);
    if (!by.has(n)) by.set(n, { name: n, points: [] });
    by.get(n)!.points.push([e.step, e.values[key]]);
  }
  return [...by.values()];
}

// Evaluations as dots. The x axis is the trained stage's step: an evaluation of a stage that
// has no training series here (e.g. SFT's, before GRPO) is drawn at step 0, as the start.
function evalSeries(history: ReportEntry[], key: string): Series[] {
  const trained = new Set(history.filter((e) => e.kind !== 'eval' && key in e.values).map((e) => e.stage));
  const by = new Map<string, Series>();
  for (const e of history) {
    if (e.kind !== 'eval' || !(key in e.values)) continue;
    const own = trained.has(e.stage);
    const n = `eval ${label(e.stage, e.branch)}${own ? '' : ' (at 0)'}`;
    if (!by.has(n)) by.set(n, { name: n, points: [], markers: true });
    by.get(n)!.points.push([own ? e.step : 0, e.values[key]]);
  }
  return [...by.values()];
}

// Held-out evaluations as one curve per branch and metric: those of the last evaluated stage
// (GRPO's, every eval_every steps) at their steps, with the evaluation before them (the
// checkpoint that stage started from, e.g. SFT's) at step 0: what training did to them.
function evalCurves(history: ReportEntry[], keys: Record<string, string>): Series[] {
  const evals = history.filter((e) => e.kind === 'eval');
  const out: Series[] = [];
  for (const [key, name] of Object.entries(keys)) {
    for (const branch of [...new Set(evals.map((e) => e.branch ?? ''))]) {
      const mine = evals.filter((e) => (e.branch ?? '') === branch && key in e.values);
      if (mine.length === 0) continue;
      const stage = mine[mine.length - 1].stage;
      const during = mine.filter((e) => e.stage === stage);
      const first = history.indexOf(during[0]);
      const start = mine.filter((e) => e.stage !== stage && history.indexOf(e) < first).pop();
      const points: [number, number][] = [...(start ? [[0, start.values[key]] as [number, number]] : []), ...during.map((e) => [e.step, e.values[key]] as [number, number])];
      out.push({ name: branch ? `${name} · ${branch}` : name, points: points.sort((a, b) => a[0] - b[0]) });
    }
  }
  return out;
}

const stagesOf = (history: ReportEntry[]) => [...new Set(history.filter((e) => e.kind !== 'eval').map((e) => e.stage))];

function charts(history: ReportEntry[]): string[] {
  const out: string[] = [];
  const train = history.filter((e) => e.kind !== 'eval');
  // Reward and its components, per stage that has rewards (GRPO).
  const rewardStages = stagesOf(history).filter((s) => train.some((e) => e.stage === s && Object.keys(e.values).some((k) => k.startsWith('reward/'))));
  for (const stage of rewardStages.length ? rewardStages : ['grpo']) {
    const keys = [...new Set(train.filter((e) => e.stage === stage).flatMap((e) => Object.keys(e.values).filter((k) => k.startsWith('reward/'))))];
    const series = keys.flatMap((k) => metricSeries(history, k, (e) => e.stage === stage, (e) => `${k.slice('reward/'.length)}${e.branch ? ` · ${e.branch}` : ''}`));
    out.push(lineChart(series, { title: `Reward and components: ${stage}`, xLabel: 'step' }));
  }
  out.push(lineChart(evalCurves(history, { accuracy: 'accuracy', pass_at_k: 'pass@k', format_rate: 'format' }), { title: 'Held-out accuracy (greedy), pass@k, format (step 0: the start)', xLabel: 'step' }));
  out.push(lineChart([...metricSeries(history, 'accuracy'), ...evalSeries(history, 'accuracy')], { title: 'Accuracy (training batches; evaluations as dots)', xLabel: 'step' }));
  out.push(lineChart([...metricSeries(history, 'format_rate'), ...evalSeries(history, 'format_rate')], { title: 'Format adherence', xLabel: 'step' }));
  out.push(lineChart([...metricSeries(history, 'response_length'), ...evalSeries(history, 'response_length')], { title: 'Response length (tokens)', xLabel: 'step' }));
  out.push(lineChart(metricSeries(history, 'kl'), { title: 'KL to the reference', xLabel: 'step' }));
  if (train.some((e) => 'mismatch/logprob_diff_max' in e.values)) {
    // The generator's log-probs against the learner's for the trained tokens (GRPO steps).
    const stat = (key: string, what: string) => metricSeries(history, key, () => true, (e) => `${what} · ${label(e.stage, e.branch)}`);
    out.push(lineChart([...stat('mismatch/logprob_diff_mean', 'mean'), ...stat('mismatch/logprob_diff_max', 'max')], { title: 'Rollout/training mismatch |Δ log-prob|', xLabel: 'step' }));
  }
  const lrStages = stagesOf(history).filter((s) => train.some((e) => e.stage === s && 'lr' in e.values));
  for (const stage of lrStages.length ? lrStages : ['(none)']) {
    out.push(lineChart(metricSeries(history, 'lr', (e) => e.stage === stage), { title: `Learning rate: ${stage}`, xLabel: 'step' }));
  }
  if (train.some((e) => 'multiturn/turns' in e.values)) {
    out.push(lineChart(metricSeries(history, 'multiturn/turns'), { title: 'Turns per rollout (multi-turn)', xLabel: 'step' }));
    out.push(lineChart(metricSeries(history, 'multiturn/tool_success', (e) => (e.values['multiturn/tool_calls'] ?? 0) > 0), { title: 'Tool-call success rate (steps with calls)', xLabel: 'step' }));
  }
  for (const stage of stagesOf(history).filter((s) => train.some((e) => e.stage === s && 'loss' in e.values))) {
    out.push(lineChart(metricSeries(history, 'loss', (e) => e.stage === stage), { title: `Loss: ${stage}`, xLabel: 'step' }));
  }
  return out;
}

const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | undefined) => (x === undefined ? '–' : formatNumber(x));

/** Per branch, the latest evaluation of each evaluated stage (the table adds what the last stage changed). */
export function branchComparison(history: ReportEntry[]): { branches: string[]; stages: string[]; cell: (branch: string, stage: string) => ReportEntry | undefined } {
  const evals = history.filter((e) => e.kind === 'eval');
  const stages = [...new Set(evals.map((e) => e.stage))];
  const branches = [...new Set(evals.map((e) => e.branch ?? ''))];
  const cell = (branch: string, stage: string) =>
    evals.filter((e) => (e.branch ?? '') === branch && e.stage === stage).sort((a, b) => a.step - b.step).slice(-1)[0];
  return { branches, stages, cell };
}

function comparisonTable(history: ReportEntry[]): string {
  const { branches, stages, cell } = branchComparison(history);
  if (stages.length === 0) return '<p class="none">No evaluations in this run.</p>';
  const head = stages.map((s) => `<th colspan="3">${escapeXml(s)}</th>`).join('');
  const sub = stages.map(() => '<th>accuracy</th><th>format</th><th>pass@k</th>').join('');
  const [from, to] = stages.length > 1 ? stages.slice(-2) : [undefined, stages[0]];
  const rows = branches.map((b) => {
    const cells = stages.map((s) => {
      const e = cell(b, s);
      return `<td>${pct(e?.values.accuracy)}</td><td>${pct(e?.values.format_rate)}</td><td>${pct(e?.values.pass_at_k)}</td>`;
    });
    // What the last stage did: its accuracy against that of the checkpoint it started from.
    const before = from ? cell(b, from) : undefined;
    const after = cell(b, to);
    const delta = before && after ? `${((after.values.accuracy - before.values.accuracy) * 100).toFixed(1)} pts` : '–';
    return `<tr><th>${escapeXml(b || '(main)')}</th>${cells.join('')}<td>${delta}</td></tr>`;
  });
  return `<table class="compare"><thead><tr><th rowspan="2">branch</th>${head}<th rowspan="2">Δ accuracy<br>(${escapeXml(from ?? to)} → ${escapeXml(to)})</th></tr><tr>${sub}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/**
 * Multi-turn stages at a glance: per stage and branch, turns per rollout and reward over the
 * first and the last tenth of the steps, tool calls per rollout, the share of tool calls that
 * went through, and conversations an environment failure ended.
 */
export function conversationRows(history: ReportEntry[]): { stage: string; branch: string; steps: number; turnsFirst: number; turnsLast: number; rewardFirst: number; rewardLast: number; toolCalls: number; toolSuccess?: number; environmentErrors: number }[] {
  const steps = history.filter((e) => e.kind !== 'eval' && 'multiturn/turns' in e.values);
  const lanes = [...new Set(steps.map((e) => `${e.stage}\u0000${e.branch ?? ''}`))];
  return lanes.map((lane) => {
    const [stage, branch] = lane.split('\u0000');
    const mine = steps.filter((e) => e.stage === stage && (e.branch ?? '') === branch).sort((a, b) => a.step - b.step);
    const tenth = Math.max(1, Math.floor(mine.length / 10));
    const avg = (es: ReportEntry[], k: string) => es.reduce((t, e) => t + (e.values[k] ?? 0), 0) / es.length;
    const calls = mine.reduce((t, e) => t + (e.values['multiturn/tool_calls'] ?? 0), 0);
    const succeeded = mine.reduce((t, e) => t + (e.values['multiturn/tool_calls'] ?? 0) * (e.values['multiturn/tool_success'] ?? 0), 0);
    return {
      stage,
      branch,
      steps: mine.length,
      turnsFirst: avg(mine.slice(0, tenth), 'multiturn/turns'),
      turnsLast: avg(mine.slice(-tenth), 'multiturn/turns'),
      rewardFirst: avg(mine.slice(0, tenth), 'reward/total'),
      rewardLast: avg(mine.slice(-tenth), 'reward/total'),
      toolCalls: calls / mine.length,
      toolSuccess: calls > 0 ? succeeded / calls : undefined,
      environmentErrors: mine.reduce((t, e) => t + (e.values['multiturn/environment_errors'] ?? 0), 0),
    };
  });
}

function conversationTable(history: ReportEntry[]): string {
  const rows = conversationRows(history);
  if (rows.length === 0) return '';
  const body = rows.map(
    (r) =>
      `<tr><th>${escapeXml(label(r.stage, r.branch))}</th><td>${r.steps}</td><td>${r.turnsFirst.toFixed(2)} → ${r.turnsLast.toFixed(2)}</td><td>${num(r.rewardFirst)} → ${num(r.rewardLast)}</td><td>${r.toolCalls.toFixed(2)}</td><td>${pct(r.toolSuccess)}</td><td>${r.environmentErrors}</td></tr>`,
  );
  return `<h2>Conversations</h2>
<table class="conversations"><thead><tr><th>stage</th><th>steps</th><th>turns per rollout<br>(first → last tenth)</th><th>reward<br>(first → last tenth)</th><th>tool calls per rollout</th><th>tool-call success</th><th>ended by an environment failure</th></tr></thead><tbody>${body.join('')}</tbody></table>`;
}

function evalTable(history: ReportEntry[]): string {
  const evals = history.filter((e) => e.kind === 'eval');
  if (evals.length === 0) return '';
  const rows = evals.map(
    (e) =>
      `<tr><td>${escapeXml(e.stage)}</td><td>${escapeXml(e.branch || '')}</td><td>${e.step}</td><td>${pct(e.values.accuracy)}</td><td>${pct(e.values.pass_at_k)}${e.values.k ? ` (k=${e.values.k})` : ''}</td><td>${pct(e.values.format_rate)}</td><td>${num(e.values.response_length)}</td><td>${num(e.values.prompts)}</td></tr>`,
  );
  return `<table><thead><tr><th>stage</th><th>branch</th><th>step</th><th>accuracy (greedy)</th><th>pass@k</th><th>format</th><th>length</th><th>prompts</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function rewardComponents(h: ReportEntry[]): string {
  const tables = componentTables(h);
  if (!tables) return '';
  return `<h2>Reward components</h2>
${tables}
<div class="charts">
${componentCharts(h).join('\n')}
</div>`;
}

const style = `
body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555;font-size:13px}.error{color:#b00}.verdict{font-size:14px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;background:#fff}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f0f0f0}tbody th{text-align:left}.none{color:#888}`;

/** The whole report, one HTML document. */
export function renderReport(input: ReportInput, generatedAt = new Date()): string {
  const h = input.history;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Temper run ${escapeXml(input.name || input.run_id)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>${style}</style></head>
<body>
<h1>Temper run ${escapeXml(input.name || input.run_id)}</h1>
<div class="meta">run <code>${escapeXml(input.run_id)}</code> · ${escapeXml(input.state)} · ${h.filter((e) => e.kind !== 'eval').length} steps · ${h.filter((e) => e.kind === 'eval').length} evaluations · written ${escapeXml(generatedAt.toISOString())}</div>
${input.error ? `<p class="error">${escapeXml(input.error)}</p>` : ''}
<h2>Branch comparison</h2>
${comparisonTable(h)}
${studySection(h)}
<h2>Evaluations</h2>
${evalTable(h) || '<p class="none">None.</p>'}
${conversationTable(h)}
<h2>Training</h2>
<div class="charts">
${charts(h).join('\n')}
</div>
${rewardComponents(h)}
</body></html>
`;
}
