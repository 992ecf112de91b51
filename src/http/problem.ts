// The one error type that crosses the HTTP boundary. Everything a request can fail with is
// turned into an HttpProblem and rendered as application/problem+json (RFC 9457).

/** One invalid input field: `field` is a dotted path into the request body ("address.city",
 *  "tags.2"), or the name of a query parameter. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export interface ProblemInit {
  readonly detail?: string;
  readonly errors?: readonly FieldError[];
  /** Extra response headers, e.g. Allow for 405 or Retry-After for 503. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A short slug appended to the problem type URI, e.g. "validation". */
  readonly type?: string;
}

const titles: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export class HttpProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: readonly FieldError[];
  readonly headers: Readonly<Record<string, string>>;
  readonly type: string;

  constructor(status: number, init: ProblemInit = {}) {
    const title = titles[status] ?? 'Error';
    super(init.detail ?? title);
    this.status = status;
    this.title = title;
    this.detail = init.detail ?? title;
    this.errors = init.errors ?? [];
    this.headers = init.headers ?? {};
    this.type = init.type === undefined ? 'about:blank' : `https://lockstep.dev/problems/${init.type}`;
  }

  toJSON(): Record<string, unknown> {
    const body: Record<string, unknown> = { type: this.type, title: this.title, status: this.status, detail: this.detail };
    if (this.errors.length > 0) body.errors = this.errors;
    return body;
  }
}

export const problemMediaType = 'application/problem+json';
