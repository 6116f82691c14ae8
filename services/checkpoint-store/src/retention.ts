// Retention: keep the last N checkpoints of each run and branch, everything tagged, and
// every checkpoint another run or branch grew from (a fork point such as the stable
// checkpoint decay branches start at). Older checkpoints on the same line are pruned:
// their files go, their manifests stay, so lineage stays whole.
import { CheckpointManifest } from '@temper/proto';
import { chronological, LineageGraph } from './lineage';

export interface RetentionPolicy {
  /** Checkpoints to keep per run and branch; 0 keeps everything. */
  keepLast: number;
}

/** Ids retention would prune from `manifests` (skipping those pruned already), oldest first. */
export function pruneCandidates(
  manifests: CheckpointManifest[],
  taggedIds: Set<string>,
  policy: RetentionPolicy,
  prunedIds: Set<string> = new Set(),
): string[] {
  if (policy.keepLast <= 0) return [];
  const graph = new LineageGraph(manifests);
  const groups = new Map<string, CheckpointManifest[]>();
  for (const m of manifests) {
    if (prunedIds.has(m.id)) continue;
    const key = lineKey(m);
    const list = groups.get(key) ?? [];
    list.push(m);
    groups.set(key, list);
  }
  const out: CheckpointManifest[] = [];
  for (const [key, list] of groups) {
    const newestFirst = [...list].sort(chronological).reverse();
    for (const m of newestFirst.slice(policy.keepLast)) {
      if (taggedIds.has(m.id)) continue;
      if (graph.children(m.id).some((c) => lineKey(c) !== key)) continue; // a fork point
      out.push(m);
    }
  }
  return out.sort(chronological).map((m) => m.id);
}

function lineKey(m: CheckpointManifest): string {
  return JSON.stringify([m.runId, m.branch]);
}
