// The one error type that crosses layers on its way to a client. Code below src/http/ says what
// kind of failure happened; it never picks an HTTP status. src/http/problem.ts maps each kind to a
// status and title and renders application/problem+json (RFC 9457).

/** Every kind of failure a request can end in. Adding one means adding its status in
 *  src/http/problem.ts (the compiler insists: the mapping is a Record over this union). */
export type ProblemKind =
  /** The request is malformed or names something invalid (a field, a query, a header value). */
  | 'invalid'
  | 'not-found'
  /** No valid credential came with the request (none, malformed, unknown, expired, revoked);
   *  `headers['WWW-Authenticate']` names the schemes accepted. */
  | 'unauthorized'
  /** The caller is known, but its roles and its token's scope do not allow this. */
  | 'forbidden'
  /** The method is not supported on this path; `headers.Allow` says which are. */
  | 'method-not-allowed'
  /** No representation the client accepts can be produced. */
  | 'not-acceptable'
  /** The request conflicts with the current state (concurrent writes, app-level rules). */
  | 'conflict'
  /** A compare-and-set (If-Match, expected version) did not hold. */
  | 'precondition-failed'
  /** The request is well formed but cannot be carried out as asked (an Idempotency-Key reused
   *  for a different request). */
  | 'unprocessable'
  /** The body or the work it asks for exceeds a limit. */
  | 'too-large'
  | 'uri-too-long'
  | 'unsupported-media-type'
  | 'headers-too-large'
  /** The node cannot serve this now (no leader, no quorum, deadline passed, shutting down);
   *  `headers['Retry-After']` says when to try again. */
  | 'unavailable'
  /** A bug on our side; the client learns nothing more. */
  | 'internal';

/** One invalid input field: `field` is a dotted path into the request body ("address.city",
 *  "tags.2"), or the name of a query parameter. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export interface ProblemInit {
  readonly detail?: string;
  readonly errors?: readonly FieldError[];
  /** Extra response headers, e.g. Allow for 'method-not-allowed' or Retry-After for 'unavailable'. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A short slug naming the problem type more precisely than its kind, e.g. "validation";
   *  rendered as a problem type URI. */
  readonly type?: string;
}

export class Problem extends Error {
  readonly kind: ProblemKind;
  /** Human-readable explanation of this occurrence; absent = the kind's title says it all. */
  readonly detail: string | undefined;
  readonly errors: readonly FieldError[];
  readonly headers: Readonly<Record<string, string>>;
  readonly type: string | undefined;

  constructor(kind: ProblemKind, init: ProblemInit = {}) {
    super(init.detail ?? kind);
    this.name = new.target.name;
    this.kind = kind;
    this.detail = init.detail;
    this.errors = init.errors ?? [];
    this.headers = init.headers ?? {};
    this.type = init.type;
  }
}
