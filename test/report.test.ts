// The HTML report of a run: self-contained (no scripts, nothing fetched), every plot drawn from
// the run's history, and, opened in headless Chromium (Debian's `chromium` package), rendered
// with visible plot lines. The screenshot is kept in test-artifacts/report.png.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { promisify } from 'node:util';
import { componentTrends, flagOnsets } from '../apps/cli/src/report/components';
import { ReportEntry, renderReport, branchComparison, conversationRows } from '../apps/cli/src/report/html';
import { branchResults, rankMixtures, unstableSteps } from '../apps/cli/src/report/study';
import { niceTicks } from '../apps/cli/src/report/svg';

const run = promisify(execFile);

// A history shaped like the default pipeline's: mid-training (stable, then two decay
// branches), SFT and GRPO on each branch, evaluations after SFT and GRPO.
function pipelineHistory(): ReportEntry[] {
  const h: ReportEntry[] = [];
  for (let s = 1; s <= 40; s++) h.push({ stage: 'midtrain', branch: '', step: s, kind: '', values: { loss: 5 - s * 0.05, lr: s <= 5 ? s * 2e-4 : 1e-3 } });
  for (const [b, floor] of [['short-cot', 0.1], ['long-cot', 0.2]] as const) {
    for (let s = 41; s <= 60; s++) h.push({ stage: 'midtrain', branch: b, step: s, kind: '', values: { loss: 3 - (s - 40) * 0.02, lr: 1e-3 * (floor + (1 - floor) * 0.5 * (1 + Math.cos((Math.PI * (s - 40)) / 20))) } });
    h.push({ stage: 'midtrain', branch: b, step: 60, kind: 'eval', values: { accuracy: 0.02, format_rate: 0, pass_at_k: 0.05, k: 4, response_length: 48, prompts: 32 } });
    for (let s = 1; s <= 20; s++) h.push({ stage: 'sft', branch: b, step: s, kind: '', values: { loss: 2 - s * 0.05, lr: 2e-3 } });
    h.push({ stage: 'sft', branch: b, step: 20, kind: 'eval', values: { accuracy: 0.3, format_rate: 0.97, pass_at_k: 0.5, k: 4, response_length: 12, prompts: 32 } });
    for (let s = 1; s <= 30; s++) {
      const acc = 0.3 + s * (b === 'short-cot' ? 0.012 : 0.008);
      h.push({ stage: 'grpo', branch: b, step: s, kind: '', values: { 'reward/total': acc + 0.2, 'reward/accuracy': acc, 'reward/format': 0.98, accuracy: acc, format_rate: 0.98, response_length: 12 + s * 0.1, kl: s * 0.001, lr: 1e-5, 'mismatch/logprob_diff_mean': 4e-8, 'mismatch/logprob_diff_max': 4.8e-7 } });
      // eval_every 15: the last step's evaluation is the eval stage's, below.
      if (s === 15) h.push({ stage: 'grpo', branch: b, step: 15, kind: 'eval', values: { accuracy: 0.45, format_rate: 0.98, pass_at_k: 0.7, k: 4, response_length: 13, prompts: 32 } });
    }
    h.push({ stage: 'grpo', branch: b, step: 30, kind: 'eval', values: { accuracy: b === 'short-cot' ? 0.62 : 0.5, format_rate: 0.99, pass_at_k: 0.8, k: 4, response_length: 14, prompts: 32 } });
  }
  return h;
}

// A history shaped like the domain study's: SFT, then GRPO with four reward components, where
// the policy takes up padding from step 20 (the guard fires, its component falls) while format
// is learned early and accuracy late.
function domainHistory(): ReportEntry[] {
  const h: ReportEntry[] = [];
  for (let s = 1; s <= 10; s++) h.push({ stage: 'sft', step: s, kind: '', values: { loss: 2 - s * 0.1, lr: 3e-3 } });
  h.push({ stage: 'sft', step: 10, kind: 'eval', values: { accuracy: 0.2, format_rate: 0.9, pass_at_k: 0.5, k: 4, response_length: 30, prompts: 32 } });
  for (let s = 1; s <= 60; s++) {
    const format = Math.min(1, 0.5 + s * 0.05);
    const accuracy = s < 40 ? 0.2 : 0.2 + (s - 40) * 0.02;
    const padding = s < 20 ? 0 : Math.min(0.5, (s - 20) * 0.02);
    h.push({
      stage: 'grpo',
      step: s,
      kind: '',
      values: { 'reward/total': accuracy + 0.25 * format - 1.5 * padding, 'reward/accuracy': accuracy, 'reward/format': format, 'reward/reasoning': 0.8, 'reward/choice_guard': -padding, 'flag/padding': padding, 'flag/no_answer': 0.05, accuracy, format_rate: format, response_length: 30 + s, kl: 0.001 * s, lr: 2e-4 },
    });
  }
  h.push({ stage: 'grpo', step: 60, kind: 'eval', values: { accuracy: 0.5, format_rate: 1, pass_at_k: 0.7, k: 4, response_length: 40, prompts: 32 } });
  return h;
}

// Minimal PNG reader (8-bit RGB / RGBA, not interlaced): what Chromium writes.
function readPng(buf: Buffer): { width: number; height: number; channels: number; pixels: Uint8Array } {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit, non-interlaced PNGs');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      if (!channels) throw new Error(`PNG color type ${data[9]} not supported`);
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let p = line[x];
      if (filter === 1) p += a;
      else if (filter === 2) p += b;
      else if (filter === 3) p += (a + b) >> 1;
      else if (filter === 4) {
        const q = a + b - c;
        const [pa, pb, pc] = [Math.abs(q - a), Math.abs(q - b), Math.abs(q - c)];
        p += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = p & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Pixels of strong colour (plot lines and markers; the page itself is black, grey and white). */
function colouredPixels(png: ReturnType<typeof readPng>): number {
  let n = 0;
  for (let i = 0; i < png.width * png.height; i++) {
    const [r, g, b] = png.pixels.subarray(i * png.channels, i * png.channels + 3);
    if (Math.max(r, g, b) - Math.min(r, g, b) > 90) n++;
  }
  return n;
}

function chromiumBinary(): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((c): c is string => !!c);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error('headless Chromium is needed for this test: apt-get install -y chromium (or set CHROMIUM)');
  return found;
}

async function chromium(args: string[], profile: string): Promise<string> {
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${profile}`];
  const { stdout } = await run(chromiumBinary(), [...flags, ...args], { timeout: 90_000, maxBuffer: 64 << 20 });
  return stdout;
}

describe('HTML report', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-report-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is one self-contained file with every plot drawn from the history', () => {
    const html = renderReport({ run_id: 'r-1', name: 'pipeline', state: 'succeeded', history: pipelineHistory() });
    expect(html).not.toMatch(/<script|<link|\ssrc=|\shref=|@import|url\(/i);
    const titles = [...html.matchAll(/font-weight="bold">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(titles).toEqual(expect.arrayContaining(['Reward and components: grpo', 'Accuracy (training batches; evaluations as dots)', 'Response length (tokens)', 'KL to the reference', 'Rollout/training mismatch |Δ log-prob|', 'Learning rate: midtrain', 'Learning rate: sft', 'Learning rate: grpo']));
    expect(html).not.toContain('class="chart empty"');
    // Reward components per branch: total, accuracy and format on two branches.
    const reward = html.slice(html.indexOf('Reward and components: grpo'), html.indexOf('</svg>', html.indexOf('Reward and components: grpo')));
    expect([...reward.matchAll(/<polyline class="series" data-series="([^"]+)" data-points="(\d+)"/g)].map((m) => [m[1], Number(m[2])])).toEqual([
      ['total · short-cot', 30],
      ['total · long-cot', 30],
      ['accuracy · short-cot', 30],
      ['accuracy · long-cot', 30],
      ['format · short-cot', 30],
      ['format · long-cot', 30],
    ]);
    // Evaluations on the accuracy plot: GRPO's at its steps, SFT's (before GRPO) at step 0.
    const acc = html.slice(html.indexOf('Accuracy (training'), html.indexOf('</svg>', html.indexOf('Accuracy (training')));
    expect(acc).toContain('class="series markers" data-series="eval grpo · short-cot" data-points="2"');
    expect(acc).toContain('class="series markers" data-series="eval sft · long-cot (at 0)" data-points="1"');
    // Held-out curves per branch: from the SFT checkpoint's evaluation (step 0) through GRPO's.
    const held = html.slice(html.indexOf('Held-out accuracy'), html.indexOf('</svg>', html.indexOf('Held-out accuracy')));
    const curves = [...held.matchAll(/<polyline class="series" data-series="([^"]+)" data-points="(\d+)"/g)].map((m) => [m[1], Number(m[2])]);
    expect(curves).toEqual(expect.arrayContaining([['accuracy · short-cot', 3], ['accuracy · long-cot', 3], ['pass@k · short-cot', 3], ['format · long-cot', 3]]));
    expect(held).toMatch(/data-series="accuracy · short-cot" data-points="3"[^>]*points="[^"]+"/);
    // The mid-training schedule: the stable phase and each branch's decay.
    const lr = html.slice(html.indexOf('Learning rate: midtrain'), html.indexOf('</svg>', html.indexOf('Learning rate: midtrain')));
    expect([...lr.matchAll(/data-series="([^"]+)" data-points="(\d+)"/g)].filter((m) => !m[0].includes('dots')).map((m) => m[1])).toEqual(expect.arrayContaining(['midtrain', 'midtrain · short-cot', 'midtrain · long-cot']));
  });

  it('compares the branches on their evaluations', () => {
    const { branches, stages, cell } = branchComparison(pipelineHistory());
    expect(branches).toEqual(['short-cot', 'long-cot']);
    expect(stages).toEqual(['midtrain', 'sft', 'grpo']);
    expect(cell('short-cot', 'grpo')?.values.accuracy).toBe(0.62);
    const html = renderReport({ run_id: 'r-1', name: 'pipeline', state: 'succeeded', history: pipelineHistory() });
    const table = html.slice(html.indexOf('<table class="compare">'), html.indexOf('</table>'));
    // Δ is what the last stage did: GRPO against the SFT checkpoint it started from.
    expect(table).toContain('Δ accuracy<br>(sft → grpo)');
    expect(table).toContain('<th>short-cot</th><td>2.0%</td><td>0.0%</td><td>5.0%</td><td>30.0%</td><td>97.0%</td><td>50.0%</td><td>62.0%</td><td>99.0%</td><td>80.0%</td><td>32.0 pts</td>');
    expect(table).toContain('<th>long-cot</th><td>2.0%</td><td>0.0%</td><td>5.0%</td><td>30.0%</td><td>97.0%</td><td>50.0%</td><td>50.0%</td><td>99.0%</td><td>80.0%</td><td>20.0 pts</td>');
  });

  it('shows multi-turn stages: turns per rollout, tool calls and their success, environment failures', () => {
    const history: ReportEntry[] = Array.from({ length: 20 }, (_, i) => ({
      stage: 'grpo',
      step: i + 1,
      values: {
        'reward/total': i < 2 ? 0.1 : i >= 18 ? 0.6 : 0.3,
        'multiturn/turns': i < 2 ? 3 : i >= 18 ? 1.5 : 2,
        // 2 calls per rollout, 3 of 4 through on even steps, all on odd ones.
        'multiturn/tool_calls': 2,
        'multiturn/tool_success': i % 2 === 0 ? 0.75 : 1,
        'multiturn/environment_errors': i === 5 ? 3 : 0,
      },
    }));
    expect(conversationRows(history)).toEqual([
      { stage: 'grpo', branch: '', steps: 20, turnsFirst: 3, turnsLast: 1.5, rewardFirst: 0.1, rewardLast: 0.6, toolCalls: 2, toolSuccess: 0.875, environmentErrors: 3 },
    ]);
    const html = renderReport({ run_id: 'r-2', name: 'guess', state: 'succeeded', history });
    expect(html).toContain('<tr><th>grpo</th><td>20</td><td>3.00 → 1.50</td><td>0.1 → 0.6</td><td>2.00</td><td>87.5%</td><td>3</td></tr>');
    const titles = [...html.matchAll(/font-weight="bold">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(titles).toEqual(expect.arrayContaining(['Turns per rollout (multi-turn)', 'Tool-call success rate (steps with calls)']));
    // A single-turn run has no such section.
    expect(renderReport({ run_id: 'r-1', name: 'pipeline', state: 'succeeded', history: pipelineHistory() })).not.toContain('Conversations');
  });

  it('shows each reward component on its own, and which flag came up first', () => {
    const h = domainHistory();
    const trends = Object.fromEntries(componentTrends(h).map((t) => [t.component, t]));
    // Format moved first (half its rise by step 10 of 60), accuracy late, reasoning not at all.
    expect(trends.format.halfway).toBeLessThan(15);
    expect(trends.accuracy.halfway).toBeGreaterThan(45);
    expect(trends.reasoning.halfway).toBeUndefined();
    expect(trends.choice_guard.end).toBeLessThan(-0.4);
    const onsets = flagOnsets(h);
    expect(onsets.map((f) => [f.flag, f.onset])).toEqual([['padding', expect.any(Number)], ['no_answer', undefined]]);
    // The share reaches 10% at step 25; smoothed over six steps, a few steps later.
    expect(onsets[0].onset).toBeGreaterThanOrEqual(25);
    expect(onsets[0].onset).toBeLessThanOrEqual(30);

    const html = renderReport({ run_id: 'r-2', name: 'study-domain', state: 'succeeded', history: h });
    const titles = [...html.matchAll(/font-weight="bold">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(titles).toEqual(expect.arrayContaining(['accuracy (component): grpo', 'format (component): grpo', 'reasoning (component): grpo', 'choice_guard (component): grpo', 'Share of completions flagged: grpo']));
    expect(html).toContain(`First flag to come up on 10% of a step's completions: <b>padding</b> at step ${onsets[0].onset} (grpo).`);
    const flags = html.slice(html.indexOf('Share of completions flagged'), html.indexOf('</svg>', html.indexOf('Share of completions flagged')));
    expect([...flags.matchAll(/data-series="([^"]+)" data-points="(\d+)"/g)].map((m) => [m[1], Number(m[2])])).toEqual([
      ['padding', 60],
      ['no_answer', 60],
    ]);
    // A run without rewards (mid-training only) has no such section.
    expect(renderReport({ run_id: 'r-3', name: 'm', state: 'succeeded', history: h.filter((e) => e.stage === 'sft') })).not.toContain('Reward components');
  });

  it('counts unstable steps by kind', () => {
    const steps = (n: number, values: (s: number) => Record<string, number>): ReportEntry[] => Array.from({ length: n }, (_, i) => ({ stage: 'grpo', step: i + 1, kind: '', values: values(i + 1) }));
    // Calm: small noise everywhere.
    const calm = (s: number) => ({ grad_norm: 1 + 0.05 * Math.sin(s), loss: 0.01 * Math.sin(s * 1.7), entropy: 2 + 0.01 * Math.cos(s), 'reward/total': 0.5 + 0.002 * s });
    expect(unstableSteps(steps(60, calm))).toEqual({ gradNorm: 0, loss: 0, entropy: 0, rewardFall: 0, total: 0 });
    // Two gradient spikes, one loss spike (on a spiked step too), entropy collapsing from step 51.
    const rough = steps(60, (s) => ({ ...calm(s), grad_norm: s === 20 || s === 40 ? 9 : calm(s).grad_norm, loss: s === 40 ? 5 : calm(s).loss, entropy: s > 50 ? 0.5 : 2 }));
    expect(unstableSteps(rough)).toEqual({ gradNorm: 2, loss: 1, entropy: 10, rewardFall: 0, total: 12 });
    // The reward falls from 0.6 to 0.2 after step 30: once the 10-step mean is 30% under its best.
    const fall = unstableSteps(steps(60, (s) => ({ ...calm(s), 'reward/total': s <= 30 ? 0.6 : 0.2 })));
    expect(fall.rewardFall).toBeGreaterThan(20);
    expect(fall.rewardFall).toBeLessThanOrEqual(30);
  });

  it('ranks mixtures as RL starting points, replicates together with their spread', () => {
    const h: ReportEntry[] = [];
    const final: Record<string, number> = { 'qa_1': 0.5, 'qa_2': 0.4, 'math_1': 0.3, 'math_2': 0.32, 'long_1': 0.45, 'long_2': 0.05 };
    for (const branch of Object.keys(final)) {
      h.push({ stage: 'midtrain', branch, step: 100, kind: 'eval', values: { accuracy: 0.01 } });
      h.push({ stage: 'sft', branch, step: 10, kind: 'eval', values: { accuracy: 0.1 } });
      for (let s = 1; s <= 20; s++) h.push({ stage: 'grpo', branch, step: s, kind: '', values: { 'reward/total': 0.5, grad_norm: branch === 'long_2' && s === 15 ? 50 : 1, loss: 0, entropy: 1, response_length: branch.startsWith('long') ? 20 + s : 20 } });
      h.push({ stage: 'grpo', branch, step: 20, kind: 'eval', values: { accuracy: final[branch] } });
    }
    const results = branchResults(h);
    expect(results.find((r) => r.branch === 'long_1')).toMatchObject({ midtrain: 0.01, before: 0.1, after: 0.45, lengthStart: 21.5, lengthEnd: 39.5, steps: 20 });
    expect(results.find((r) => r.branch === 'long_2')!.unstable.gradNorm).toBe(1);
    const ranked = rankMixtures(results);
    expect(ranked.map((m) => [m.mixture, m.replicates.length])).toEqual([['qa', 2], ['math', 2], ['long', 2]]);
    expect(ranked[0].after).toBeCloseTo(0.45);
    expect(ranked[0].gainRange![0]).toBeCloseTo(0.3);
    expect(ranked[0].gainRange![1]).toBeCloseTo(0.4);
    expect(ranked[2].unstable).toBe(0.5);
    const html = renderReport({ run_id: 'r-4', name: 'study-midtrain', state: 'succeeded', history: h });
    const table = html.slice(html.indexOf('<table class="ranking">'), html.indexOf('</table>', html.indexOf('<table class="ranking">')));
    expect(table).toContain('<tr><td>1</td><th>qa</th><td>2</td><td>45.0% <span class="spread">(40.0% to 50.0%)</span></td><td>+35.0 pts <span class="spread">(+30.0 to +40.0)</span></td><td>0</td></tr>');
    expect(html).toContain('<th>long_1</th><td>1.0%</td><td>10.0%</td><td>45.0%</td><td>+35.0 pts</td><td>21.5 → 39.5</td>');
    // One branch alone is no comparison: no section.
    expect(renderReport({ run_id: 'r-5', name: 'one', state: 'succeeded', history: h.filter((e) => e.branch === 'qa_1') })).not.toContain('Branches as RL starting points');
  });

  it('picks round tick values', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map((x) => Number(x.toFixed(10))).map((x) => expect.closeTo(x, 9)));
    expect(niceTicks(3, 97, 5)).toEqual([20, 40, 60, 80]);
  });

  it('renders in headless Chromium with visible plots (screenshot in test-artifacts/)', async () => {
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, renderReport({ run_id: 'r-1', name: 'pipeline', state: 'succeeded', history: pipelineHistory() }));
    const url = `file://${file}`;
    const dom = await chromium(['--dump-dom', url], path.join(dir, 'profile-dom'));
    // The browser parsed the charts: every one has drawn series.
    const charts = dom.split('<svg').slice(1);
    expect(charts.length).toBeGreaterThanOrEqual(9);
    for (const c of charts) expect(c).toMatch(/<polyline class="series"|class="series markers"/);

    // The domain study's report: its component charts and flag chart drawn, the verdict shown.
    const domainFile = path.join(dir, 'domain.html');
    fs.writeFileSync(domainFile, renderReport({ run_id: 'r-2', name: 'study-domain', state: 'succeeded', history: domainHistory() }));
    const domainDom = await chromium(['--dump-dom', `file://${domainFile}`], path.join(dir, 'profile-domain'));
    const section = domainDom.slice(domainDom.indexOf('<h2>Reward components</h2>'));
    expect(section).toMatch(/First flag to come up on 10% of a step's completions: <b>padding<\/b>/);
    const componentCharts = section.split('<svg').slice(1);
    expect(componentCharts).toHaveLength(5);
    for (const c of componentCharts) expect(c).toMatch(/<polyline class="series"/);

    const artifacts = path.resolve(__dirname, '..', 'test-artifacts');
    fs.mkdirSync(artifacts, { recursive: true });
    const shot = path.join(artifacts, 'report.png');
    fs.rmSync(shot, { force: true });
    await chromium(['--window-size=1280,2400', `--screenshot=${shot}`, url], path.join(dir, 'profile-shot'));
    const png = readPng(fs.readFileSync(shot));
    expect(png.width).toBe(1280);
    const drawn = colouredPixels(png);

    // The same page without data draws no plot lines: the count above comes from the plots.
    const emptyFile = path.join(dir, 'empty.html');
    fs.writeFileSync(emptyFile, renderReport({ run_id: 'r-0', name: 'empty', state: 'failed', history: [] }));
    const emptyShot = path.join(dir, 'empty.png');
    await chromium(['--window-size=1280,2400', `--screenshot=${emptyShot}`, `file://${emptyFile}`], path.join(dir, 'profile-empty'));
    const blank = colouredPixels(readPng(fs.readFileSync(emptyShot)));
    expect(blank).toBeLessThan(50);
    expect(drawn).toBeGreaterThan(5000);
  }, 180_000);
});
