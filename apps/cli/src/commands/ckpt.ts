// temper ckpt ls | push <dir> | pull <id> <dir> | tag <id> <tag> | lineage <id> | rm <id>:
// checkpoints in the checkpoint store, over its gRPC API (--endpoint, else
// TEMPER_CHECKPOINT_STORE_ADDR, else the local default port).
import { CheckpointClient, checkpointStoreAddress, ManifestFields, totalBytes } from '@temper/checkpoint-client';
import { CheckpointManifest } from '@temper/proto';
import { spaceOutFullCollections } from '@temper/service';

export const ckptUsage = `temper ckpt <command> [--endpoint host:port] [--json]

  ls [--run R] [--branch B] [--stage S] [--tag T] [--pruned]
                          list checkpoints, oldest first (--pruned: also those retention pruned).
  push <dir> [--run R] [--branch B] [--stage S] [--step N] [--tokens N] [--parent ID]
             [--label k=v]... [--metric k=x]... [--tag T] [--policy-version N]
                          upload a model directory as a checkpoint (resumes an interrupted push).
  pull <id|tag> <dir> [--file PATH]...
                          download a checkpoint into dir; files are verified before they appear.
  tag <id> <tag> [--remove]
                          point a tag at a checkpoint (moving it), or remove it.
  lineage <id|tag>        ancestors, descendants and branches forking from a checkpoint.
  rm <id|tag> [--force]   delete a checkpoint (refused while others descend from it or it is tagged).
`;

/** Options that take a value; everything else starting with -- is a switch. */
const VALUED = new Set(['endpoint', 'run', 'branch', 'stage', 'step', 'tokens', 'parent', 'label', 'metric', 'tag', 'policy-version', 'file']);

interface Parsed {
  positional: string[];
  options: Map<string, string[]>;
  switches: Set<string>;
}

export function parseCkptArgs(args: string[]): Parsed {
  const parsed: Parsed = { positional: [], options: new Map(), switches: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      parsed.positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (!VALUED.has(name)) {
      parsed.switches.add(name);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    parsed.options.set(name, [...(parsed.options.get(name) ?? []), value]);
  }
  return parsed;
}

export async function ckpt(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === 'help' || sub === '--help') {
    out.write(ckptUsage);
    return sub ? 0 : 2;
  }
  const p = parseCkptArgs(rest);
  const one = (name: string) => p.options.get(name)?.at(-1);
  const json = p.switches.has('json');
  const print = (value: unknown, text: string) => out.write(json ? JSON.stringify(value) + '\n' : text);
  const client = new CheckpointClient(checkpointStoreAddress(one('endpoint')));
  try {
    switch (sub) {
      case 'ls': {
        const res = await client.list({ runId: one('run'), branch: one('branch'), stage: one('stage'), tag: one('tag'), includePruned: p.switches.has('pruned') });
        const pruned = new Set(res.prunedIds);
        const rows = res.checkpoints.map((m) => ({ ...summary(m), tags: res.tags[m.id] ?? [], pruned: pruned.has(m.id) }));
        print(rows, rows.length === 0 ? 'no checkpoints\n' : table(rows.map((r) => [r.id.slice(0, 12), r.run, r.branch, r.stage, String(r.step), formatBytes(r.bytes), r.created, [...r.tags, ...(r.pruned ? ['(pruned)'] : [])].join(',')]), ['ID', 'RUN', 'BRANCH', 'STAGE', 'STEP', 'SIZE', 'CREATED', 'TAGS']));
        return 0;
      }
      case 'push': {
        const dir = need(p.positional[0], 'temper ckpt push <dir>');
        const fields: ManifestFields = {
          runId: one('run') ?? '',
          branch: one('branch') ?? 'main',
          stage: one('stage') ?? '',
          step: count(one('step'), '--step'),
          tokensSeen: count(one('tokens'), '--tokens'),
          parentId: one('parent') ?? '',
          labels: pairs(p.options.get('label'), '--label', (v) => v),
          metrics: pairs(p.options.get('metric'), '--metric', (v, k) => {
            const x = Number(v);
            if (!Number.isFinite(x)) throw new Error(`--metric ${k}=${v}: not a number`);
            return x;
          }),
        };
        if (fields.parentId) fields.parentId = await resolveId(client, fields.parentId, '--parent');
        spaceOutFullCollections(); // this process is now a checkpoint stream (@temper/service gc.ts)
        const res = await client.pushDir(dir, fields, { policyVersion: count(one('policy-version'), '--policy-version') });
        const tag = one('tag');
        if (tag) await client.tag(res.manifest.id, tag);
        print(
          { ...summary(res.manifest), created: res.created, bytes_sent: res.bytesSent, tag: tag ?? null },
          `${res.created ? 'pushed' : 'already stored'} ${res.manifest.id} (${res.manifest.files.length} files, ${formatBytes(totalBytes(res.manifest))}, ${formatBytes(res.bytesSent)} sent)${tag ? `, tagged ${tag}` : ''}\n`,
        );
        return 0;
      }
      case 'pull': {
        const ref = need(p.positional[0], 'temper ckpt pull <id|tag> <dir>');
        const dir = need(p.positional[1], 'temper ckpt pull <id|tag> <dir>');
        spaceOutFullCollections(); // this process is now a checkpoint stream (@temper/service gc.ts)
        const t0 = performance.now();
        const res = await client.pullDir(ref, dir, { paths: p.options.get('file') });
        const s = (performance.now() - t0) / 1000;
        print({ ...summary(res.manifest), dir, bytes: res.bytes, seconds: s }, `pulled ${res.manifest.id} into ${dir} (${formatBytes(res.bytes)} in ${s.toFixed(1)} s)\n`);
        return 0;
      }
      case 'tag': {
        const ref = need(p.positional[0], 'temper ckpt tag <id> <tag>');
        const tag = need(p.positional[1], 'temper ckpt tag <id> <tag>');
        const remove = p.switches.has('remove');
        const m = await client.tag(ref, tag, remove);
        print({ id: m.id, tag, removed: remove }, `${remove ? 'removed' : 'tagged'} ${tag} ${remove ? 'from' : '->'} ${m.id}\n`);
        return 0;
      }
      case 'lineage': {
        const ref = need(p.positional[0], 'temper ckpt lineage <id|tag>');
        const res = await client.lineage(ref);
        const pruned = new Set(res.prunedIds);
        const line = (m: CheckpointManifest) => `  ${m.id.slice(0, 12)}  ${m.branch || '-'}  ${m.stage || '-'}  step ${m.step}${pruned.has(m.id) ? '  (pruned)' : ''}\n`;
        print(
          { ancestors: res.ancestors.map(summary), descendants: res.descendants.map(summary), branches: res.branches, pruned_ids: res.prunedIds },
          `ancestors (parent first):\n${res.ancestors.map(line).join('') || '  none\n'}descendants:\n${res.descendants.map(line).join('') || '  none\n'}branches forking here: ${res.branches.join(', ') || 'none'}\n`,
        );
        return 0;
      }
      case 'rm': {
        const ref = need(p.positional[0], 'temper ckpt rm <id|tag>');
        const ids = await client.delete(ref, p.switches.has('force'));
        print({ deleted: ids }, ids.map((id) => `deleted ${id}\n`).join(''));
        return 0;
      }
      default:
        process.stderr.write(`temper ckpt: unknown command "${sub}"\n\n${ckptUsage}`);
        return 2;
    }
  } finally {
    client.close();
  }
}

/** A full id for an id, unique id prefix or tag (manifests name their parent by full id). */
async function resolveId(client: CheckpointClient, ref: string, name: string): Promise<string> {
  if (/^[0-9a-f]{64}$/.test(ref)) return ref;
  const tagged = (await client.list({ tag: ref })).checkpoints;
  if (tagged.length === 1) return tagged[0].id;
  const matches = (await client.list({ includePruned: true })).checkpoints.filter((m) => m.id.startsWith(ref));
  if (matches.length === 1) return matches[0].id;
  throw new Error(`${name} ${ref}: ${matches.length > 1 ? 'ambiguous id prefix' : 'no checkpoint has this id, id prefix or tag'}`);
}

function summary(m: CheckpointManifest) {
  return {
    id: m.id,
    run: m.runId,
    branch: m.branch,
    stage: m.stage,
    step: m.step,
    parent: m.parentId,
    bytes: totalBytes(m),
    files: m.files.length,
    created: m.createdAt?.toISOString() ?? '',
  };
}


function need(value: string | undefined, usage: string): string {
  if (!value) throw new Error(`usage: ${usage}`);
  return value;
}

function count(value: string | undefined, name: string): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, not ${JSON.stringify(value)}`);
  return n;
}

function pairs<T>(values: string[] | undefined, name: string, parse: (v: string, k: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const kv of values ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`${name} takes key=value, not ${JSON.stringify(kv)}`);
    out[kv.slice(0, eq)] = parse(kv.slice(eq + 1), kv.slice(0, eq));
  }
  return out;
}

function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  return all.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n') + '\n';
}
