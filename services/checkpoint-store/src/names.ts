// What a file path, upload id or tag may look like. Which file paths are safe is decided in
// one place for both ends (filePathProblem, in the client package); the store refuses the
// others with INVALID_ARGUMENT naming the field.
import { filePathProblem } from '@temper/checkpoint-client';
import { invalidArgument } from './errors';

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
