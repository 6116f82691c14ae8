// What a GRPO step reports: rewards and their components (and the shares solved and well
// formed, by the components the reward spec names for them), the share of completions with
// each scorer flag, what was collected and dropped, where the step's time went, and the
// training figures.
import { RewardReport, RewardSpec } from '@temper/proto';
import type { GrpoStepMetrics } from '@temper/training';
import type { Collected } from './collect';

/** The reward components a spec reports as accuracy and as format rate (report_as). */
export interface ReportedComponents {
  accuracy?: string;
  format?: string;
}

export function reportedComponents(spec: RewardSpec | undefined): ReportedComponents {
  const named = (report: RewardReport) => spec?.components.find((c) => c.reportAs === report)?.name;
  return { accuracy: named(RewardReport.REWARD_REPORT_ACCURACY), format: named(RewardReport.REWARD_REPORT_FORMAT) };
}

export interface StepReport {
  collected: Collected;
  /** Masked (trained) tokens and completions cut off by the length limit. */
  batch: { maskedTokens: number; stats: { overlongCompletions: number } };
  /** null: nothing to train on. */
  train: GrpoStepMetrics | null;
  lr: number;
  /** The version the step made. */
  policyVersion: number;
  /** Whether its weights reached the generators by the stream (else they pull the checkpoint). */
  streamed: boolean;
  /** Milliseconds: the whole step, waiting for rollouts, learning, publishing. */
  stepMs: number;
  waitedMs: number;
  learnMs: number;
  syncMs: number;
}

export function stepMetrics(r: StepReport, reported: ReportedComponents): Record<string, number> {
  const groups = r.collected.groups;
  const rewards = groups.flatMap((g) => g.rewards);
  const completions = groups.flatMap((g) => g.group?.completions ?? []);
  const generateSeconds = sum(groups.map((g) => g.group?.generateSeconds ?? 0));
  const values: Record<string, number> = {
    'reward/total': mean(rewards.map((x) => x.total)),
    response_length: mean(completions.map((c) => c.tokenIds.length)),
    groups: groups.length,
    // Asked for and not trained on after every refill: the step trained on a short batch.
    short_groups: r.collected.asked - groups.length,
    degenerate_groups: r.collected.degenerate,
    stale_groups: r.collected.stale,
    refill_rounds: r.collected.refills,
    overlong_completions: r.batch.stats.overlongCompletions,
    // Completion tokens the loss saw (a multi-turn rollout's observation tokens are not among them).
    trained_tokens: r.batch.maskedTokens,
    lr: r.lr,
    policy_version: r.policyVersion,
    policy_lag: mean(groups.map((g) => r.policyVersion - 1 - (g.group?.policyVersion ?? 0))),
    weights_streamed: r.streamed ? 1 : 0,
    'time/step_s': r.stepMs / 1000,
    'time/rollout_wait_s': r.waitedMs / 1000,
    // Engine and scoring time spent on this step's groups (a batch's time is shared among its groups).
    'time/generate_s': generateSeconds,
    'time/score_s': sum(groups.map((g) => g.scoreSeconds)),
    'time/learn_s': r.learnMs / 1000,
    'time/sync_s': r.syncMs / 1000,
    'tokens_per_s/train': r.batch.maskedTokens / Math.max(1e-9, r.learnMs / 1000),
    'tokens_per_s/generate': sum(completions.map((c) => c.tokenIds.length)) / Math.max(1e-9, generateSeconds),
  };
  const conversations = completions.filter((c) => c.turns > 0);
  if (conversations.length > 0) {
    // Multi-turn rollouts: how long the conversations ran, how the tools went, how many an environment failure ended.
    const calls = sum(conversations.map((c) => c.toolCalls));
    values['multiturn/turns'] = mean(conversations.map((c) => c.turns));
    values['multiturn/tool_calls'] = calls / conversations.length;
    values['multiturn/tool_success'] = calls ? 1 - sum(conversations.map((c) => c.toolCallsFailed)) / calls : 0;
    values['multiturn/environment_errors'] = conversations.filter((c) => c.endReason.startsWith('environment')).length;
    values['multiturn/model_tokens'] = mean(conversations.map((c) => c.lossMask.reduce((a, b) => a + b, 0)));
  }
  if (completions.some((c) => c.tokenPolicyVersions.length > 0)) {
    // Partial rollouts: how far behind the trained policy each token's version was, and how
    // many completions a newer version finished.
    const tokenVersions = groups.flatMap((g) => (g.group?.completions ?? []).flatMap((c) => (c.tokenPolicyVersions.length ? c.tokenPolicyVersions : c.tokenIds.map(() => g.group?.policyVersion ?? 0))));
    values.token_policy_lag = mean(tokenVersions.map((v) => r.policyVersion - 1 - v));
    values.partial_completions = completions.filter((c) => new Set(c.tokenPolicyVersions).size > 1).length;
  }
  for (const name of new Set(rewards.flatMap((x) => Object.keys(x.components)))) {
    values[`reward/${name}`] = mean(rewards.map((x) => x.components[name] ?? 0));
  }
  // How often each flag the scorer raised came up (a guard's name, "no_answer", …): the share of
  // completions with it, so a report shows which hack a policy took up, and when.
  for (const flag of new Set(rewards.flatMap((x) => x.flags))) values[`flag/${flag}`] = mean(rewards.map((x) => (x.flags.includes(flag) ? 1 : 0)));
  if (rewards.length > 0) {
    // Solved outright, and well formed: a component at 1 or more (partial credit is neither).
    const share = (component: string) => mean(rewards.map((x) => ((x.components[component] ?? 0) >= 1 ? 1 : 0)));
    if (reported.accuracy) values.accuracy = share(reported.accuracy);
    if (reported.format) values.format_rate = share(reported.format);
  }
  if (r.train) {
    values.loss = r.train.loss;
    values.kl = r.train.kl;
    values.entropy = r.train.entropy;
    values.clip_fraction = r.train.clipFraction;
    values.grad_norm = r.train.gradNorm;
    // How far the generator's log-probs of the trained tokens are from the learner's.
    values['mismatch/logprob_diff_mean'] = r.train.mismatch.meanAbsDiff;
    values['mismatch/logprob_diff_max'] = r.train.mismatch.maxAbsDiff;
    values['mismatch/kl'] = r.train.mismatch.kl;
    if (r.train.importanceWeight) {
      values['mismatch/is_weight_mean'] = r.train.importanceWeight.mean;
      values['mismatch/is_capped_fraction'] = r.train.importanceWeight.cappedFraction;
    }
    if (r.train.entropyKeptFraction !== undefined) values['entropy_mask/kept_fraction'] = r.train.entropyKeptFraction;
  }
  return values;
}

/** Groups collected, for the log line of a step that came up short. */
export function describeShortfall(c: Collected): Record<string, number> {
  return { asked: c.asked, groups: c.groups.length, missing: c.asked - c.groups.length, stale: c.stale, degenerate: c.degenerate, refills: c.refills };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);
