// Errors that carry the gRPC status they mean, so handlers and the worker can tell a bad
// request (never retried) from a policy that is not there yet (retried later).
import * as grpc from '@grpc/grpc-js';

export class GeneratorError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'GeneratorError';
  }
}

/** A malformed request; the message starts with the offending field. */
export function invalidArgument(field: string, why: string): GeneratorError {
  return new GeneratorError(grpc.status.INVALID_ARGUMENT, `${field} ${why}`);
}

export function failedPrecondition(message: string): GeneratorError {
  return new GeneratorError(grpc.status.FAILED_PRECONDITION, message);
}

/** The status for any error: its own code when it has one, INTERNAL otherwise. */
export function statusOf(err: unknown): grpc.status {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' && code in grpc.status ? code : grpc.status.INTERNAL;
}
