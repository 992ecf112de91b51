// Errors of the transport's request/response calls, as one type with a named code, so callers
// branch on `code` and never on message text. Codes follow gRPC's status codes.
import { status, type ServiceError, type StatusObject } from '@grpc/grpc-js';

export type TransportErrorCode =
  | 'unavailable' // peer down, unknown, or partitioned away
  | 'deadlineExceeded'
  | 'cancelled' // the transport stopped
  | 'invalidArgument'
  | 'permissionDenied' // under mutual TLS: the caller's certificate is not the sender it claims
  | 'failedPrecondition' // e.g. the peer is not the group's leader (the handler says so)
  | 'resourceExhausted'
  | 'aborted'
  | 'notFound'
  | 'internal'
  | 'unknown';

export class TransportError extends Error {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const toStatus: Readonly<Record<TransportErrorCode, status>> = {
  unavailable: status.UNAVAILABLE,
  deadlineExceeded: status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
  invalidArgument: status.INVALID_ARGUMENT,
  permissionDenied: status.PERMISSION_DENIED,
  failedPrecondition: status.FAILED_PRECONDITION,
  resourceExhausted: status.RESOURCE_EXHAUSTED,
  aborted: status.ABORTED,
  notFound: status.NOT_FOUND,
  internal: status.INTERNAL,
  unknown: status.UNKNOWN,
};

const fromStatus = new Map<status, TransportErrorCode>(
  Object.entries(toStatus).map(([code, grpcStatus]) => [grpcStatus, code as TransportErrorCode]),
);

/** What the server sends back when a handler fails: its TransportError code, else UNKNOWN. */
export function statusOfError(error: unknown): Partial<StatusObject> {
  if (error instanceof TransportError) return { code: toStatus[error.code], details: error.message };
  return { code: status.UNKNOWN, details: error instanceof Error ? error.message : String(error) };
}

/** A failed client call as a TransportError. */
export function transportErrorOf(error: ServiceError): TransportError {
  return new TransportError(fromStatus.get(error.code) ?? 'unknown', error.details || error.message);
}
