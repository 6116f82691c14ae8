// What a file path, upload id or tag may look like. File paths come from clients and end
// up joined to directories on the server and on every machine that pulls the checkpoint,
// so anything that could leave the checkpoint directory is refused.
import { invalidArgument } from './errors';

const MAX_PATH = 1024;

/** Why `p` is not a safe relative file path inside a checkpoint, or undefined when it is. */
export function filePathProblem(p: string): string | undefined {
  if (p.length === 0) return 'is empty';
  if (p.length > MAX_PATH) return `is longer than ${MAX_PATH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'contains a control character';
  if (p.includes('\\')) return 'contains a backslash (use "/" between directories)';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  for (const segment of p.split('/')) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
  }
  return undefined;
}

/** Throws INVALID_ARGUMENT naming the field and the path when `p` is not safe. */
export function checkFilePath(p: string, field: string): void {
  const problem = filePathProblem(p);
  if (problem) throw invalidArgument(`${field} ${JSON.stringify(p)} ${problem}; file paths must stay inside the checkpoint directory`);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkUploadId(id: string): void {
  if (!NAME.test(id)) throw invalidArgument(`upload_id ${JSON.stringify(id)} must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit`);
}

/** Tags name checkpoints; a tag may not look like an id (64 hex digits), which would be ambiguous. */
export function checkTag(tag: string, field = 'tag'): void {
  if (!NAME.test(tag)) throw invalidArgument(`${field} ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit`);
  if (/^[0-9a-f]{64}$/.test(tag)) throw invalidArgument(`${field} ${JSON.stringify(tag)} looks like a checkpoint id`);
}

export const isSha256 = (s: string) => /^[0-9a-f]{64}$/.test(s);
