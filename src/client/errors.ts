// The client's errors: one class per problem+json kind a node answers with (RFC 9457 bodies:
// type, title, status, detail, errors[]), and one for a call whose retries ran out of time.

/** One invalid input field, as the node names it. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export class LockstepError extends Error {
  constructor(
    readonly status: number,
    /** The problem type's slug (the last segment of its type URI), or 'about:blank'. */
    readonly type: string,
    readonly title: string,
    readonly detail: string | undefined,
    readonly errors: readonly FieldError[],
    /** The node that answered. */
    readonly node: string,
  ) {
    super(detail === undefined ? `${status} ${title}` : `${status} ${title}: ${detail}`);
    this.name = new.target.name;
  }
}

export class InvalidError extends LockstepError {}
export class UnauthorizedError extends LockstepError {}
export class ForbiddenError extends LockstepError {}
export class NotFoundError extends LockstepError {}
export class NotAcceptableError extends LockstepError {}
export class ConflictError extends LockstepError {}
export class PreconditionFailedError extends LockstepError {}
export class TooLargeError extends LockstepError {}
export class UnsupportedMediaTypeError extends LockstepError {}
/** 422: e.g. an Idempotency-Key reused for another request. */
export class UnprocessableError extends LockstepError {}
export class InternalError extends LockstepError {}
/** 503: no leader, no quorum, a session index not reached in time, shutting down. */
export class UnavailableError extends LockstepError {}

/** Every node the call tried failed in a retryable way until its deadline. */
export class DeadlineExceededError extends Error {
  constructor(
    readonly deadlineMs: number,
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(`no node answered within ${deadlineMs} ms (${attempts} attempts); last: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
    this.name = 'DeadlineExceededError';
  }
}

type ErrorClass = new (status: number, type: string, title: string, detail: string | undefined, errors: readonly FieldError[], node: string) => LockstepError;

const byStatus: Readonly<Record<number, ErrorClass>> = {
  400: InvalidError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  406: NotAcceptableError,
  409: ConflictError,
  412: PreconditionFailedError,
  413: TooLargeError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableError,
  500: InternalError,
  503: UnavailableError,
};

/** The typed error for a non-2xx answer, from its problem+json body (or its status alone). */
export function errorOf(status: number, body: string, node: string): LockstepError {
  let problem: { type?: unknown; title?: unknown; detail?: unknown; errors?: unknown } = {};
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) problem = parsed as typeof problem;
  } catch {
    // Not problem+json (a proxy's page): the status says what there is to say.
  }
  const type = typeof problem.type === 'string' ? (problem.type.split('/').pop() ?? problem.type) : 'about:blank';
  const title = typeof problem.title === 'string' ? problem.title : `HTTP ${status}`;
  const detail = typeof problem.detail === 'string' ? problem.detail : undefined;
  const errors = Array.isArray(problem.errors) ? (problem.errors as FieldError[]) : [];
  const ErrorType = byStatus[status] ?? LockstepError;
  return new ErrorType(status, type, title, detail, errors, node);
}
