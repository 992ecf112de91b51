// Answering a Problem where no router is involved: on a raw socket before a WebSocket upgrade, or
// on an SSE response before its headers went out. Which status and body a kind answers with is
// the HTTP layer's decision (src/http/problem.ts); it reaches this layer as a ProblemRenderer in
// RealtimeOptions, so the real-time layer writes answers without knowing status codes.

import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Problem } from '../model/problem.js';

/** How long a refused upgrade's answer may take to reach the peer before the socket is destroyed. */
const problemFlushMsMax = 2_000;

/** A problem as the HTTP layer answers it; `headers` include Content-Type. */
export interface RenderedProblem {
  readonly status: number;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type ProblemRenderer = (problem: Problem) => RenderedProblem;

/** Anything that is not a Problem is a bug on our side; the client learns only "500". */
export function toProblem(error: unknown): Problem {
  if (error instanceof Problem) return error;
  return new Problem('internal', { detail: 'subscription could not be set up' });
}

export function writeProblemToSocket(socket: Duplex, answer: RenderedProblem): void {
  const headers: Record<string, string> = {
    ...answer.headers,
    'Content-Length': String(Buffer.byteLength(answer.body)),
    Connection: 'close',
  };
  const head = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? answer.title}`];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // end() flushes the answer first; the timer frees the socket even if the peer never reads it.
  const timer = setTimeout(() => socket.destroy(), problemFlushMsMax).unref();
  socket.end(`${head.join('\r\n')}\r\n\r\n${answer.body}`, () => {
    clearTimeout(timer);
    socket.destroy();
  });
}

export function writeProblemToResponse(res: ServerResponse, answer: RenderedProblem): void {
  res.writeHead(answer.status, {
    ...answer.headers,
    'Content-Length': Buffer.byteLength(answer.body),
  });
  res.end(answer.body);
}
