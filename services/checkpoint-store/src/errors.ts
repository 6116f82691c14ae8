// Errors the store raises, each with the gRPC status it maps to, so a handler can answer
// INVALID_ARGUMENT / NOT_FOUND / DATA_LOSS with a message that names what was wrong.
import { status } from '@grpc/grpc-js';

export class StoreError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export const invalidArgument = (msg: string) => new StoreError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new StoreError(status.NOT_FOUND, msg);
export const failedPrecondition = (msg: string) => new StoreError(status.FAILED_PRECONDITION, msg);
export const dataLoss = (msg: string) => new StoreError(status.DATA_LOSS, msg);
export const aborted = (msg: string) => new StoreError(status.ABORTED, msg);
export const outOfRange = (msg: string) => new StoreError(status.OUT_OF_RANGE, msg);
export const resourceExhausted = (msg: string) => new StoreError(status.RESOURCE_EXHAUSTED, msg);
export const unavailable = (msg: string) => new StoreError(status.UNAVAILABLE, msg);
