// A step's scored groups, as many as were asked for when possible. Groups sampled more than
// max_policy_lag versions back are dropped and asked for again; so, with dynamic sampling (here
// and nowhere else), are groups whose rewards are all equal, which carry no gradient. A few
// rounds of refills at most: a step still short after them trains on what it has, and says so.
import type { ScoredPromptGroup } from '@temper/algorithms';
import { FinishReason, ScoredGroup } from '@temper/proto';
import type { GrpoSettings } from './config';
import type { StepRollouts } from './step-rollouts';

/** Rounds of refills after the first collection. */
export const MAX_REFILLS = 3;

export interface Collected {
  /** The groups to train on. */
  groups: ScoredGroup[];
  /** Groups asked for by the step (prompts per step). */
  asked: number;
  /** Groups dropped for having been sampled too many versions back. */
  stale: number;
  /** Groups (not stale) whose rewards were all equal: each counted once, dropped or trained on. */
  degenerate: number;
  /** Refill rounds it took. */
  refills: number;
}

export async function collectStep(rollouts: StepRollouts, g: GrpoSettings, step: number, policyVersion: number): Promise<Collected> {
  const out: Collected = { groups: [], asked: g.promptsPerStep, stale: 0, degenerate: 0, refills: 0 };
  let indices: number[] | undefined;
  for (;;) {
    let dropped = 0;
    for (const sg of await rollouts.collect(step, indices)) {
      if (policyVersion - (sg.group?.policyVersion ?? 0) > g.maxPolicyLag) {
        out.stale++;
        dropped++;
        continue;
      }
      const flat = isFlat(sg);
      if (flat) out.degenerate++;
      if (flat && g.dynamicSampling) dropped++;
      else out.groups.push(sg);
    }
    if (dropped === 0 || out.refills === MAX_REFILLS) return out;
    out.refills++;
    indices = await rollouts.refill(step, dropped, policyVersion);
  }
}

function isFlat(sg: ScoredGroup): boolean {
  return sg.rewards.every((r) => r.total === sg.rewards[0].total);
}

/** A scored group as the batch builder takes it. */
export function toPromptGroup(sg: ScoredGroup): ScoredPromptGroup {
  const group = sg.group!;
  return {
    promptIds: group.prompt?.tokenIds ?? [],
    completions: group.completions.map((c) => ({
      tokenIds: c.tokenIds,
      logprobs: c.logprobs,
      finishReason: c.finishReason === FinishReason.FINISH_REASON_LENGTH ? 'length' : c.finishReason === FinishReason.FINISH_REASON_ABORTED ? 'aborted' : 'stop',
      lossMask: c.lossMask,
    })),
    rewards: sg.rewards.map((r) => r.total),
  };
}
