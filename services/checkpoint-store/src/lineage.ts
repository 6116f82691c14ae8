// Lineage over a set of manifests: each checkpoint names its parent, so ancestors follow
// parent ids up and descendants follow the reverse edges down. A branch forks from a
// checkpoint when one of its children is on another branch (stable -> decay-a, decay-b).
import { CheckpointManifest } from '@temper/proto';

export class LineageGraph {
  private readonly byId = new Map<string, CheckpointManifest>();
  private readonly childrenOf = new Map<string, CheckpointManifest[]>();

  constructor(manifests: Iterable<CheckpointManifest>) {
    for (const m of manifests) this.byId.set(m.id, m);
    for (const m of this.byId.values()) {
      if (!m.parentId) continue;
      const list = this.childrenOf.get(m.parentId) ?? [];
      list.push(m);
      this.childrenOf.set(m.parentId, list);
    }
    for (const list of this.childrenOf.values()) list.sort(chronological);
  }

  get(id: string): CheckpointManifest | undefined {
    return this.byId.get(id);
  }

  children(id: string): CheckpointManifest[] {
    return this.childrenOf.get(id) ?? [];
  }

  /** Parent first, root last; stops where a parent is no longer stored. */
  ancestors(id: string): CheckpointManifest[] {
    const out: CheckpointManifest[] = [];
    const seen = new Set([id]);
    let parent = this.byId.get(id)?.parentId;
    while (parent && !seen.has(parent)) {
      const m = this.byId.get(parent);
      if (!m) break;
      out.push(m);
      seen.add(parent);
      parent = m.parentId;
    }
    return out;
  }

  /** Every checkpoint below this one, oldest first. */
  descendants(id: string): CheckpointManifest[] {
    const out: CheckpointManifest[] = [];
    const seen = new Set([id]);
    const queue = [id];
    while (queue.length > 0) {
      for (const child of this.children(queue.shift()!)) {
        if (seen.has(child.id)) continue;
        seen.add(child.id);
        out.push(child);
        queue.push(child.id);
      }
    }
    return out.sort(chronological);
  }

  /** Branch names of this checkpoint's children that differ from its own branch. */
  forks(id: string): string[] {
    const own = this.byId.get(id)?.branch;
    const names = new Set(this.children(id).map((c) => c.branch).filter((b) => b !== own));
    return [...names].sort();
  }
}

/** Oldest first: by creation time, then step, then id so the order is total. */
export function chronological(a: CheckpointManifest, b: CheckpointManifest): number {
  const ta = a.createdAt?.getTime() ?? 0;
  const tb = b.createdAt?.getTime() ?? 0;
  if (ta !== tb) return ta - tb;
  if (a.step !== b.step) return a.step - b.step;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
