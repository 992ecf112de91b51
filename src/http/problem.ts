// The HTTP face of a Problem (src/model/problem.ts): the status and title each kind answers with,
// and its application/problem+json body (RFC 9457: type, title, status, detail, errors). This is
// the only place that maps failure kinds to status codes.
import { Problem, type ProblemKind } from '../model/problem.js';
import type { RenderedProblem } from '../realtime/problem-response.js';

export const problemMediaType = 'application/problem+json';

const problemTypeBase = 'https://lockstep.dev/problems/';

interface Answer {
  readonly status: number;
  readonly title: string;
}

const answers: Readonly<Record<ProblemKind, Answer>> = {
  invalid: { status: 400, title: 'Bad Request' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'not-found': { status: 404, title: 'Not Found' },
  'method-not-allowed': { status: 405, title: 'Method Not Allowed' },
  'not-acceptable': { status: 406, title: 'Not Acceptable' },
  conflict: { status: 409, title: 'Conflict' },
  'precondition-failed': { status: 412, title: 'Precondition Failed' },
  unprocessable: { status: 422, title: 'Unprocessable Content' },
  'too-large': { status: 413, title: 'Content Too Large' },
  'uri-too-long': { status: 414, title: 'URI Too Long' },
  'unsupported-media-type': { status: 415, title: 'Unsupported Media Type' },
  'headers-too-large': { status: 431, title: 'Request Header Fields Too Large' },
  internal: { status: 500, title: 'Internal Server Error' },
  unavailable: { status: 503, title: 'Service Unavailable' },
};

export function problemStatus(problem: Problem): number {
  return answers[problem.kind].status;
}

/** The problem+json body. Field order is fixed (type, title, status, detail, errors). */
export function problemJson(problem: Problem): Record<string, unknown> {
  const { status, title } = answers[problem.kind];
  const type = problem.type === undefined ? 'about:blank' : `${problemTypeBase}${problem.type}`;
  const body: Record<string, unknown> = { type, title, status, detail: problem.detail ?? title };
  if (problem.errors.length > 0) body.errors = problem.errors;
  return body;
}

/** Anything thrown that is not a Problem is a bug on our side; the client learns only "500". */
export function asProblem(error: unknown): Problem {
  return error instanceof Problem ? error : new Problem('internal', { detail: 'internal error' });
}

/** Status, title, headers and body, for writers that do not go through the router (the
 *  real-time layer's refused upgrades and SSE requests, Node's clientError). */
export function renderProblem(problem: Problem): RenderedProblem {
  const { status, title } = answers[problem.kind];
  return {
    status,
    title,
    headers: { ...problem.headers, 'Content-Type': problemMediaType },
    body: JSON.stringify(problemJson(problem)),
  };
}
