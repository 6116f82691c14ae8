// What a step trained on, as one log line ("step trained"): each group's key and a digest of
// its prompt. It is how a run can be audited from the outside (the chaos run counts groups
// lost or trained twice from these lines): the metrics only carry counts.
import type { ScoredGroup } from '@temper/proto';
import { createHash } from 'node:crypto';

export interface StepRecord {
  step: number;
  attempt: number;
  /** "groupIndex/attempt" of each group trained on, in batch order. */
  groups: string[];
  /** The first 16 hex digits of the sha256 of each group's prompt (its text, else its token ids). */
  prompts: string[];
}

export function stepRecord(step: number, attempt: number, groups: ScoredGroup[]): StepRecord {
  return {
    step,
    attempt,
    groups: groups.map((sg) => `${sg.group?.key?.groupIndex ?? -1}/${sg.group?.key?.attempt ?? 0}`),
    prompts: groups.map((sg) => promptDigest(sg)),
  };
}

function promptDigest(sg: ScoredGroup): string {
  const prompt = sg.group?.prompt;
  const content = prompt?.text || (prompt?.tokenIds ?? []).join(',');
  return createHash('sha256').update(content).digest('hex').slice(0, 16);
}
