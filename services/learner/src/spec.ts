// Run specs as users write them (YAML, or the proto message over gRPC), checked and completed
// with defaults. Problems are reported together, each with its path in the document.
import { IMPORTANCE_SAMPLING_MODES } from '@temper/algorithms';
import { datasetPresets } from '@temper/data';
import { builtinEnvironment, checkToolFormat, isUserModule, resolveTools } from '@temper/environments';
import { checkDocument, DataSource, DocumentError, RewardReport, rewardReportToJSON, RunSpec, StageSpec } from '@temper/proto';
import { parseDocument } from 'yaml';

export class SpecError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid run spec:\n  ${problems.join('\n  ')}`);
    this.name = 'SpecError';
  }
}

/** A YAML (or JSON) run spec, checked. */
export function runSpecFromYaml(text: string): RunSpec {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new SpecError(doc.errors.map((e) => e.message.replace(/\s+/g, ' ').trim()));
  let checked;
  let value: unknown;
  try {
    // toJS resolves aliases: one that names no anchor (or an alias bomb past the YAML
    // library's limit) throws here, a mistake in the spec like any other.
    value = doc.toJS();
  } catch (err) {
    throw new SpecError([`YAML: ${err instanceof Error ? err.message : String(err)}`]);
  }
  try {
    checked = checkDocument('temper.v1.RunSpec', value);
  } catch (err) {
    if (err instanceof DocumentError) throw new SpecError(err.problems);
    throw err;
  }
  return checkRunSpec(RunSpec.fromJSON(checked));
}

/** Checks what the message types cannot say on their own; returns the spec with stage names filled in. */
export function checkRunSpec(spec: RunSpec): RunSpec {
  const problems: string[] = [];
  if (spec.stages.length === 0) problems.push('stages: a run needs at least one stage');
  const names = new Set<string>();
  const stages = spec.stages.map((s, i): StageSpec => {
    const at = `stages[${i}]`;
    const kind = s.kind?.$case;
    if (!kind) problems.push(`${at}: set one of midtrain, sft, grpo or eval`);
    const name = s.name || `${kind ?? 'stage'}-${i}`;
    if (names.has(name)) problems.push(`${at}.name: "${name}" is used by an earlier stage`);
    names.add(name);
    if (s.kind?.$case === 'grpo') {
      checkGrpo(s.kind.value, `${at}.grpo`, problems);
      // Asynchronous sampling lets timing decide which version samples a group: not reproducible.
      if (spec.reproducible && s.kind.value.maxPolicyLag > 0) problems.push(`${at}.grpo.max_policy_lag: reproducible runs sample synchronously (0)`);
    }
    return { ...s, name };
  });
  checkModel(spec, problems);
  checkReported(spec, problems);
  mapDataSources(spec, (source, at) => {
    checkDataSource(source, at, problems);
    return source;
  });
  if (problems.length) throw new SpecError(problems);
  return { ...spec, stages };
}

// A run starts from one model: a stored checkpoint, a model directory, or a config.
function checkModel(spec: RunSpec, problems: string[]): void {
  const m = spec.model;
  if (!m) return;
  const given = [m.checkpoint && 'checkpoint', m.path && 'path', m.config && Object.keys(m.config).length > 0 && 'config'].filter(Boolean);
  if (given.length > 1) problems.push(`model: set one of checkpoint, path or config, not ${given.join(' and ')}`);
}

// One component at most stands for each reported metric (accuracy, format_rate).
function checkReported(spec: RunSpec, problems: string[]): void {
  const first = new Map<RewardReport, number>();
  spec.reward?.components.forEach((c, i) => {
    if (c.reportAs === RewardReport.REWARD_REPORT_UNSPECIFIED) return;
    const earlier = first.get(c.reportAs);
    const as = rewardReportToJSON(c.reportAs).replace('REWARD_REPORT_', '').toLowerCase();
    if (earlier !== undefined) problems.push(`reward.components[${i}].report_as: ${as} is reported by reward.components[${earlier}] already`);
    else first.set(c.reportAs, i);
  });
}

function checkDataSource(s: DataSource, at: string, problems: string[]): void {
  const d = s.dataset;
  if (!d) return;
  if (s.uri) problems.push(`${at}: set uri or dataset, not both`);
  if (at.includes('.midtrain.')) problems.push(`${at}.dataset: mid-training reads documents (uri); a dataset gives prompts with answers (GRPO tasks, evaluation, SFT)`);
  if (!d.path) problems.push(`${at}.dataset.path: required (a .parquet or .jsonl file, or a directory of them)`);
  if (d.preset && !(d.preset in datasetPresets)) problems.push(`${at}.dataset.preset: unknown preset "${d.preset}" (known: ${Object.keys(datasetPresets).join(', ')})`);
  if (d.split && !/^[\w.-]+$/.test(d.split)) problems.push(`${at}.dataset.split: must be a name like "train" or "test"`);
  for (const key of Object.keys(d.fields)) {
    if (!['prompt', 'answer', 'response'].includes(key)) problems.push(`${at}.dataset.fields.${key}: unknown field (known: prompt, answer, response)`);
  }
}

/** The spec with `f` applied to every data source it names; `f` is told the source's path in the document. */
export function mapDataSources(spec: RunSpec, f: (source: DataSource, at: string) => DataSource): RunSpec {
  const one = (s: DataSource | undefined, at: string) => (s ? f(s, at) : s);
  const all = (list: DataSource[], at: string) => list.map((s, i) => f(s, `${at}[${i}]`));
  const stages = spec.stages.map((stage, i): StageSpec => {
    const at = `stages[${i}]`;
    const k = stage.kind;
    switch (k?.$case) {
      case 'midtrain': {
        const m = k.value;
        const mixture = m.mixture && { sources: all(m.mixture.sources, `${at}.midtrain.mixture.sources`) };
        const branches = m.branches.map((b, j) => ({ ...b, mixture: b.mixture && { sources: all(b.mixture.sources, `${at}.midtrain.branches[${j}].mixture.sources`) } }));
        return { ...stage, kind: { $case: 'midtrain', value: { ...m, mixture, branches } } };
      }
      case 'sft':
        return { ...stage, kind: { $case: 'sft', value: { ...k.value, data: k.value.data && { sources: all(k.value.data.sources, `${at}.sft.data.sources`) } } } };
      case 'grpo':
        return { ...stage, kind: { $case: 'grpo', value: { ...k.value, task: one(k.value.task, `${at}.grpo.task`) } } };
      case 'eval':
        return { ...stage, kind: { $case: 'eval', value: { eval: k.value.eval && { ...k.value.eval, task: one(k.value.eval.task, `${at}.eval.eval.task`) } } } };
      default:
        return stage;
    }
  });
  return { ...spec, stages, eval: spec.eval && { ...spec.eval, task: one(spec.eval.task, 'eval.task') } };
}

function checkGrpo(g: Extract<StageSpec['kind'], { $case: 'grpo' }>['value'], at: string, problems: string[]): void {
  if (g.groupSize === 1) problems.push(`${at}.group_size: GRPO compares completions of one prompt, so it needs at least 2`);
  if (g.clipEpsLow < 0 || g.clipEpsLow >= 1) problems.push(`${at}.clip_eps_low: must be in [0, 1)`);
  if (g.clipEpsHigh < 0) problems.push(`${at}.clip_eps_high: must be >= 0`);
  if (g.klBeta < 0) problems.push(`${at}.kl_beta: must be >= 0`);
  if (!['', 'token', 'sequence'].includes(g.ratioLevel)) problems.push(`${at}.ratio_level: must be "token" or "sequence"`);
  if (g.importanceSamplingMode !== '' && !(IMPORTANCE_SAMPLING_MODES as readonly string[]).includes(g.importanceSamplingMode)) {
    problems.push(`${at}.importance_sampling_mode: must be one of ${IMPORTANCE_SAMPLING_MODES.map((m) => `"${m}"`).join(', ')} (or empty: off)`);
  }
  if (g.importanceSamplingCap < 0) problems.push(`${at}.importance_sampling_cap: must be > 0`);
  if (g.topEntropyQuantile < 0 || g.topEntropyQuantile > 1) problems.push(`${at}.top_entropy_quantile: must be in (0, 1]`);
  const t = g.sampling?.temperature ?? 0;
  if (t < 0) problems.push(`${at}.sampling.temperature: must be >= 0`);
  const p = g.sampling?.topP ?? 0;
  if (p < 0 || p > 1) problems.push(`${at}.sampling.top_p: must be in [0, 1]`);
  if (g.environment) checkEnvironment(g.environment, `${at}.environment`, problems);
}

// The environment's name, tools, options and tool format, checked when the run is submitted
// rather than by every generator request (a user's module is checked when it is read).
function checkEnvironment(e: NonNullable<Extract<StageSpec['kind'], { $case: 'grpo' }>['value']['environment']>, at: string, problems: string[]): void {
  const note = (err: unknown) => problems.push((err as Error).message);
  if (!e.name) problems.push(`${at}.name: required (a built-in environment, or a user's .js module)`);
  if (e.source) problems.push(`${at}.source: filled in by the learner from name; leave it out`);
  try {
    checkToolFormat(e.toolFormat, at);
  } catch (err) {
    note(err);
  }
  try {
    if (!e.name || isUserModule(e.name)) resolveTools(e.tools, `${at}.tools`);
    else builtinEnvironment({ name: e.name, options: e.options ?? {}, tools: e.tools }, at);
  } catch (err) {
    note(err);
  }
}
