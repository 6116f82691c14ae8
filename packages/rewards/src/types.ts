// The shapes a reward component sees and returns.

/** One completion to score. */
export interface ScoreInput {
  completion: string;
  /** The reference answer. */
  reference: string;
  prompt?: string;
  /** Completion length in tokens (0 or absent: estimated from the text). */
  completionTokens?: number;
  /** The generation limit in tokens (0 or absent: unknown). */
  maxTokens?: number;
  /** A multi-turn rollout's reward parts from its environment, summed over its steps. */
  environmentRewards?: Record<string, number>;
}

/** What the accuracy check decided; shared with components that depend on it. */
export interface AccuracyVerdict {
  correct: boolean;
  /** The extracted final answer, '' when there is none. */
  answer: string;
  flags: string[];
}

/** Per-item facts computed once and shared by all components of a spec. */
export interface ScoringContext {
  /** Length of the completion in tokens: given, or estimated at ~4 characters a token. */
  tokens(): number;
  /** The accuracy verdict under the spec's accuracy options (defaults if it has none). */
  verdict(): AccuracyVerdict;
}

export interface ComponentOutcome {
  value: number;
  flags?: string[];
}

export type OptionType = 'number' | 'string' | 'boolean' | 'list';
export type OptionValue = number | string | boolean | string[];

export interface OptionSpec {
  type: OptionType;
  default: OptionValue;
  description: string;
  min?: number;
  max?: number;
  /** For strings (and list elements): the values allowed. */
  oneOf?: readonly string[];
}

/**
 * A reward component: a name, the options it accepts, and a pure function from one
 * completion to a number. `prepare` turns validated options into whatever the component
 * wants to reuse for every item (compiled patterns, say), once per spec.
 */
export interface RewardComponent<Prepared = Record<string, OptionValue>> {
  name: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** Scoring means nothing without a reference answer (the service refuses items without one). */
  needsReference?: boolean;
  prepare?(options: Record<string, OptionValue>, path: string): Prepared;
  score(input: ScoreInput, prepared: Prepared, ctx: ScoringContext): number | ComponentOutcome;
}
