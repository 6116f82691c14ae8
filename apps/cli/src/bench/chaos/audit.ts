// What a run trained on and what it left in the store, checked after the fact:
//  - from the learner's "step trained" log lines: steps done more than once (a killed learner
//    resumes from its last checkpoint) and, against the same spec run without faults, prompt
//    groups lost (the fault-free run trained on them in that step, this one did not) and
//    duplicated (trained on more often in a step than the fault-free run did);
//  - from the checkpoint store: checkpoints whose files do not match their manifest's sha256,
//    and steps missing from the final checkpoint's lineage.
import type { CheckpointClient } from '@temper/checkpoint-client';
import type { CheckpointManifest } from '@temper/proto';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** One "step trained" line of the learner's log (see services/learner/src/grpo/step-record.ts). */
export interface TrainedStep {
  step: number;
  attempt: number;
  groups: string[];
  prompts: string[];
}

/** Every "step trained" line of `runId` in the learner's JSON log, in the order written. */
export function trainedSteps(learnerLog: string, runId: string): TrainedStep[] {
  const out: TrainedStep[] = [];
  for (const line of fs.readFileSync(learnerLog, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(line);
    } catch {
      continue; // a line cut short by a SIGKILL
    }
    if (l.msg === 'step trained' && l.run_id === runId) out.push({ step: Number(l.step), attempt: Number(l.attempt), groups: l.groups as string[], prompts: l.prompts as string[] });
  }
  return out;
}

export interface TrainingAudit {
  /** Step lines written in all (a redone step writes one more each time). */
  stepsTrained: number;
  /** Steps trained again after a learner's restart. */
  stepsRedone: number;
  /** Steps of the run with no line at all. */
  stepsMissing: number;
  /** Groups the fault-free run trained on in a step that this run's final pass over it did not. */
  groupsLost: number;
  /** Groups trained on more often in one step than in the fault-free run (or one group key twice). */
  groupsDuplicated: number;
}

/** This run's steps against the fault-free run's (same spec): the last pass over each step counts. */
export function auditTraining(run: TrainedStep[], faultFree: TrainedStep[], steps: number): TrainingAudit {
  const last = (records: TrainedStep[]) => new Map(records.map((r) => [r.step, r]));
  const [mine, theirs] = [last(run), last(faultFree)];
  const out: TrainingAudit = { stepsTrained: run.length, stepsRedone: run.length - mine.size, stepsMissing: 0, groupsLost: 0, groupsDuplicated: 0 };
  for (let step = 1; step <= steps; step++) {
    const m = mine.get(step);
    const t = theirs.get(step);
    if (!m) {
      out.stepsMissing++;
      out.groupsLost += t?.prompts.length ?? 0;
      continue;
    }
    out.groupsDuplicated += m.groups.length - new Set(m.groups.map((g) => g.split('/')[0])).size;
    const expected = counts(t?.prompts ?? []);
    for (const [prompt, n] of counts(m.prompts)) {
      const want = expected.get(prompt) ?? 0;
      if (n > want) out.groupsDuplicated += n - want;
      expected.set(prompt, want - Math.min(n, want));
    }
    for (const left of expected.values()) out.groupsLost += left;
  }
  return out;
}

export interface StoreAudit {
  checkpoints: number;
  /** Checkpoints (of those verified) that could not be pulled whole or whose files do not match their sha256. */
  corrupt: string[];
  /** Steps 0..N missing from the final checkpoint's lineage (or there more than once). */
  missingFromLineage: number[];
  /** The final checkpoint's model.safetensors (or adapter file) sha256, as re-computed. */
  finalWeightsSha256: string;
  /** The same of the step-0 checkpoint. */
  initialWeightsSha256: string;
}

/** `verify: 'ends'` pulls only the first and the final checkpoint (for their weights), 'all' every one. */
export async function auditStore(store: CheckpointClient, runId: string, steps: number, verify: 'all' | 'ends' = 'all'): Promise<StoreAudit> {
  const { checkpoints } = await store.list({ runId });
  const final = newest(checkpoints.filter((c) => c.step === steps));
  const initial = newest(checkpoints.filter((c) => c.step === 0));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-chaos-audit-'));
  const corrupt: string[] = [];
  const weights = new Map<string, string>();
  try {
    for (const c of verify === 'all' ? checkpoints : [initial, final].filter((x) => x !== undefined)) {
      const into = path.join(dir, c.id);
      try {
        await store.pullDir(c.id, into);
        for (const f of c.files) {
          const sha = createHash('sha256').update(fs.readFileSync(path.join(into, f.path))).digest('hex');
          if (sha !== f.sha256) throw new Error(`${f.path}: sha256 ${sha}, manifest says ${f.sha256}`);
          if (f.path === 'model.safetensors' || f.path === 'adapter/adapter_model.safetensors') weights.set(c.id, sha);
        }
      } catch {
        corrupt.push(c.id);
      }
      fs.rmSync(into, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const missingFromLineage: number[] = [];
  if (!final) for (let s = 0; s <= steps; s++) missingFromLineage.push(s);
  else {
    const { ancestors } = await store.lineage(final.id);
    const seen = counts([final, ...ancestors].map((c) => String(c.step)));
    for (let s = 0; s <= steps; s++) if (seen.get(String(s)) !== 1) missingFromLineage.push(s);
  }
  const sha = (c?: CheckpointManifest) => (c ? (weights.get(c.id) ?? '') : '');
  return { checkpoints: checkpoints.length, corrupt, missingFromLineage, finalWeightsSha256: sha(final), initialWeightsSha256: sha(initial) };
}

function newest(cs: CheckpointManifest[]): CheckpointManifest | undefined {
  return [...cs].sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0))[0];
}

function counts(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}
