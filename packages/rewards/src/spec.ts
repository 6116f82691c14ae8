// A reward spec: a weighted list of components with their options. Compiling checks it
// once (errors name the offending field) and prepares each component; scoring an item
// then runs every component, reports each raw value, and totals weight × value.
import { accuracy, AccuracySettings, accuracySettings, judgeAnswer } from './components/accuracy';
import { RewardSpecError } from './errors';
import { resolveOptions } from './options';
import { AnyRewardComponent, defaultRegistry, RewardRegistry } from './registry';
import { estimateTokens } from './text';
import { AccuracyVerdict, ComponentOutcome, ScoreInput, ScoringContext } from './types';

export interface ComponentSpecInput {
  name: string;
  weight: number;
  options?: Record<string, unknown>;
}

export interface RewardSpecInput {
  components: ComponentSpecInput[];
}

/** What one completion scored (the shape of temper.v1.RewardBreakdown). */
export interface RewardResult {
  total: number;
  /** Raw, unweighted value of each component. */
  components: Record<string, number>;
  truncated: boolean;
  flags: string[];
  extractedAnswer: string;
}

/** accuracy and format, as the default: a correct answer counts twice the format. */
export const defaultRewardSpec: RewardSpecInput = {
  components: [
    { name: 'accuracy', weight: 1 },
    { name: 'format', weight: 0.5 },
  ],
};

/** Longest completion (characters) scored as is; longer ones are cut and flagged. */
export const defaultMaxCompletionChars = 65536;

export interface CompileOptions {
  registry?: RewardRegistry;
  /** Field path used in errors (default "spec"). */
  path?: string;
  maxCompletionChars?: number;
}

interface Prepared {
  name: string;
  weight: number;
  component: AnyRewardComponent;
  settings: unknown;
}

export class CompiledRewardSpec {
  constructor(
    readonly components: readonly Prepared[],
    private readonly accuracySettings: AccuracySettings,
    private readonly maxChars: number,
  ) {}

  /** Component names in spec order. */
  names(): string[] {
    return this.components.map((c) => c.name);
  }

  score(item: ScoreInput): RewardResult {
    const truncated = item.completion.length > this.maxChars || item.reference.length > this.maxChars;
    const input: ScoreInput = truncated
      ? { ...item, completion: item.completion.slice(0, this.maxChars), reference: item.reference.slice(0, this.maxChars) }
      : item;
    const ctx = new ItemContext(input, item.completion, this.accuracySettings);
    const flags = new Set<string>(truncated ? ['truncated'] : []);
    const components: Record<string, number> = {};
    let total = 0;
    for (const c of this.components) {
      const { value, flags: f } = runComponent(c, input, ctx);
      components[c.name] = value;
      total += c.weight * value;
      for (const x of f) flags.add(x);
    }
    return { total, components, truncated, flags: [...flags], extractedAnswer: ctx.answerIfJudged() };
  }
}

// A component that throws or returns something other than a finite number scores 0 and
// is flagged, rather than failing the whole batch or poisoning the total with NaN.
function runComponent(c: Prepared, input: ScoreInput, ctx: ScoringContext): { value: number; flags: string[] } {
  let out: number | ComponentOutcome;
  try {
    out = c.component.score(input, c.settings, ctx);
  } catch {
    return { value: 0, flags: [`${c.name}_failed`] };
  }
  const value = typeof out === 'number' ? out : out?.value;
  if (typeof value !== 'number' || !Number.isFinite(value)) return { value: 0, flags: [`${c.name}_not_finite`] };
  return { value, flags: typeof out === 'number' ? [] : (out.flags ?? []) };
}

class ItemContext implements ScoringContext {
  private tokenCount?: number;
  private judged?: AccuracyVerdict;

  constructor(
    private readonly input: ScoreInput,
    private readonly original: string,
    private readonly settings: AccuracySettings,
  ) {}

  tokens(): number {
    // The real length, not the truncated one: length shaping is about what was generated.
    this.tokenCount ??= this.input.completionTokens && this.input.completionTokens > 0 ? this.input.completionTokens : estimateTokens(this.original);
    return this.tokenCount;
  }

  verdict(): AccuracyVerdict {
    this.judged ??= judgeAnswer(this.input, this.settings);
    return this.judged;
  }

  answerIfJudged(): string {
    return this.judged?.answer ?? '';
  }
}

/** Checks and prepares a spec; an empty or missing one is the default spec. */
export function compileRewardSpec(spec?: RewardSpecInput | null, opts: CompileOptions = {}): CompiledRewardSpec {
  const registry = opts.registry ?? defaultRegistry;
  const path = opts.path ?? 'spec';
  const list = spec?.components;
  if (list !== undefined && list !== null && !Array.isArray(list)) throw new RewardSpecError(`${path}.components`, 'expected a list of components');
  const entries = list && list.length > 0 ? list : defaultRewardSpec.components;
  const seen = new Set<string>();
  const prepared = entries.map((entry, i) => prepareEntry(entry, `${path}.components[${i}]`, registry, seen));
  const acc = prepared.find((p) => p.component === accuracy);
  const accSettings = acc ? (acc.settings as AccuracySettings) : accuracySettings(resolveOptions(accuracy.options, {}, 'accuracy'), 'accuracy');
  return new CompiledRewardSpec(prepared, accSettings, opts.maxCompletionChars ?? defaultMaxCompletionChars);
}

function prepareEntry(entry: ComponentSpecInput, path: string, registry: RewardRegistry, seen: Set<string>): Prepared {
  if (typeof entry !== 'object' || entry === null) throw new RewardSpecError(path, 'expected a component { name, weight, options }');
  const { name, weight, options } = entry;
  if (typeof name !== 'string' || name === '') throw new RewardSpecError(`${path}.name`, 'a component name is required');
  const component = registry.get(name);
  if (!component) throw new RewardSpecError(`${path}.name`, `unknown reward component "${name}" (known: ${registry.names().join(', ')})`);
  if (seen.has(name)) throw new RewardSpecError(`${path}.name`, `component "${name}" appears twice`);
  seen.add(name);
  if (typeof weight !== 'number' || !Number.isFinite(weight)) throw new RewardSpecError(`${path}.weight`, 'expected a finite number');
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw new RewardSpecError(`${path}.options`, 'expected a map of option names to values');
  }
  const resolved = resolveOptions(component.options, options ?? undefined, `${path}.options`);
  const settings = component.prepare ? component.prepare(resolved, `${path}.options`) : resolved;
  return { name, weight, component, settings };
}
