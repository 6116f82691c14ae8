// The GRPO stage's checkpoints, uploaded behind the steps: one at a time, in step order, each
// the child of the one before. A step's upload is held until the next step's rollout requests
// are out (startHeld), so it never delays them; a step whose weights did not reach the
// generators, and the last step, start theirs at once.
import type { WrittenCheckpoint } from '../checkpoints';
import type { StageContext } from '../stages/context';
import { Behind } from './behind';

/**
 * Uploads a step may leave queued behind it. Past this the step waits: a store that is away
 * (restarting) or slower than the steps would otherwise let the queue grow without bound, and
 * a learner that dies then resumes from a checkpoint that many steps back (the chaos run saw
 * 45 steps redone after the store had been restarted). A resume now redoes at most this many
 * steps plus save_every.
 */
export const MAX_UPLOADS_BEHIND = 4;

export class CheckpointUploads {
  private last: Behind<string>;
  /** The uploads not yet over, oldest first. */
  private readonly queued: Behind<string>[] = [];
  private held?: () => void;
  /** The first upload that failed (later ones fail with it: each is the child of the one before). */
  private failure?: Error;

  constructor(
    private readonly ctx: StageContext,
    /** The stage's newest stored checkpoint: the parent of the first upload. */
    storedId: string,
  ) {
    this.last = new Behind(Promise.resolve(storedId), 'the stage\'s starting checkpoint');
  }

  /** Queues the upload of `step`'s checkpoint (being written); it waits for startHeld(). */
  add(step: number, writing: Promise<WrittenCheckpoint>, full: boolean): void {
    this.startHeld(); // never two held: the one before goes now
    const released = new Promise<void>((resolve) => (this.held = resolve));
    const work = this.upload(writing, released, this.last, full);
    const upload = new Behind(work, `the checkpoint of step ${step} could not be stored`, (failure) => (this.failure ??= failure));
    this.last = upload;
    this.queued.push(upload);
    void upload.end().then(() => this.queued.splice(this.queued.indexOf(upload), 1));
  }

  /**
   * Waits until at most `max` (>= 1) uploads are queued or running; the first failure is
   * thrown. The one held back is the newest, never waited for here.
   */
  async behindAtMost(max = MAX_UPLOADS_BEHIND): Promise<void> {
    while (this.queued.length > max) await this.queued[this.queued.length - 1 - max].end();
    this.check();
  }

  /** Starts the upload held back, if one is. */
  startHeld(): void {
    this.held?.();
    this.held = undefined;
  }

  /** Throws the first failed upload's error (without waiting for any). */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** The newest checkpoint's id once every upload is done; the first failure is thrown. */
  async latest(): Promise<string> {
    this.startHeld();
    await this.last.end();
    this.check();
    return this.last.work;
  }

  /** Starts what is held and waits for every upload; returns the first failure instead of throwing it. */
  async end(): Promise<Error | undefined> {
    this.startHeld();
    await this.last.end();
    return this.failure;
  }

  private async upload(writing: Promise<WrittenCheckpoint>, released: Promise<void>, previous: Behind<string>, full: boolean): Promise<string> {
    const written = await writing;
    try {
      await released;
      const parentId = await previous.work;
      const manifest = await written.push(this.ctx.store, { parentId });
      if (full) await this.ctx.emitCheckpoint(manifest.id);
      return manifest.id;
    } finally {
      written.discard();
    }
  }
}
