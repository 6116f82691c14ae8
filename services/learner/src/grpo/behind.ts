// Work that runs behind a GRPO step: the requests of a step asked for ahead, a checkpoint
// uploading. Its failure is kept the moment it happens, named after the work, and thrown where
// the stage next waits for the work or checks on it, so it fails the run with its cause; it is
// never an unhandled rejection and never dropped.

export class Behind<T> {
  /** Set once the work has failed: what it was, with the error as the cause. */
  failure?: Error;
  private readonly settled: Promise<void>;

  constructor(
    /** The work itself (awaiting it directly gives its own error, unwrapped). */
    readonly work: Promise<T>,
    what: string,
    onFailure?: (failure: Error) => void,
  ) {
    this.settled = work.then(
      () => undefined,
      (err: unknown) => {
        this.failure = new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        onFailure?.(this.failure);
      },
    );
  }

  /** Its value once done; its failure is thrown. */
  async result(): Promise<T> {
    await this.settled;
    if (this.failure) throw this.failure;
    return this.work;
  }

  /** Waits for it to end and returns its failure instead of throwing it (for a stage already failing, which logs it). */
  async end(): Promise<Error | undefined> {
    await this.settled;
    return this.failure;
  }
}
