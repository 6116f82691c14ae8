// What a GRPO step reports: rewards and their components, what was collected and dropped,
// where the step's time went, and the training figures.
import type { RewardBreakdown } from '@temper/proto';
import type { GrpoStepMetrics } from '@temper/training';
import type { Collected } from './collect';

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

export function stepMetrics(r: StepReport): Record<string, number> {
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
  for (const name of new Set(rewards.flatMap((x) => Object.keys(x.components)))) {
    values[`reward/${name}`] = mean(rewards.map((x) => x.components[name] ?? 0));
  }
  Object.assign(values, solvedShares(rewards));
  if (r.train) {
    values.loss = r.train.loss;
    values.kl = r.train.kl;
    values.entropy = r.train.entropy;
    values.clip_fraction = r.train.clipFraction;
    values.grad_norm = r.train.gradNorm;
  }
  return values;
}

// Training-batch accuracy: the share solved outright (countdown's partial credit is not a solve).
function solvedShares(rewards: RewardBreakdown[]): Record<string, number> {
  const out: Record<string, number> = {};
  const judge = ['accuracy', 'countdown'].find((name) => name in (rewards[0]?.components ?? {}));
  if (judge) out.accuracy = mean(rewards.map((x) => (x.components[judge] >= 1 ? 1 : 0)));
  if ('format' in (rewards[0]?.components ?? {})) out.format_rate = mean(rewards.map((x) => (x.components.format >= 1 ? 1 : 0)));
  return out;
}

/** Groups collected, for the log line of a step that came up short. */
export function describeShortfall(c: Collected): Record<string, number> {
  return { asked: c.asked, groups: c.groups.length, missing: c.asked - c.groups.length, stale: c.stale, degenerate: c.degenerate, refills: c.refills };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);
