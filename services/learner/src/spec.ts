// Run specs as users write them (YAML, or the proto message over gRPC), checked and completed
// with defaults. Problems are reported together, each with its path in the document.
import { checkDocument, DocumentError, RewardReport, rewardReportToJSON, RunSpec, StageSpec } from '@temper/proto';
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
  try {
    checked = checkDocument('temper.v1.RunSpec', doc.toJS());
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
    if (s.kind?.$case === 'grpo') checkGrpo(s.kind.value, `${at}.grpo`, problems);
    return { ...s, name };
  });
  checkReported(spec, problems);
  if (problems.length) throw new SpecError(problems);
  return { ...spec, stages };
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

function checkGrpo(g: Extract<StageSpec['kind'], { $case: 'grpo' }>['value'], at: string, problems: string[]): void {
  if (g.groupSize === 1) problems.push(`${at}.group_size: GRPO compares completions of one prompt, so it needs at least 2`);
  if (g.clipEpsLow < 0 || g.clipEpsLow >= 1) problems.push(`${at}.clip_eps_low: must be in [0, 1)`);
  if (g.clipEpsHigh < 0) problems.push(`${at}.clip_eps_high: must be >= 0`);
  if (g.klBeta < 0) problems.push(`${at}.kl_beta: must be >= 0`);
  if (!['', 'token', 'sequence'].includes(g.ratioLevel)) problems.push(`${at}.ratio_level: must be "token" or "sequence"`);
  const t = g.sampling?.temperature ?? 0;
  if (t < 0) problems.push(`${at}.sampling.temperature: must be >= 0`);
  const p = g.sampling?.topP ?? 0;
  if (p < 0 || p > 1) problems.push(`${at}.sampling.top_p: must be in [0, 1]`);
}
