// Rendering an HttpProblem where no router is involved: on a raw socket before a WebSocket
// upgrade, or on an SSE response before its headers went out.

import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HttpProblem, problemMediaType } from '../http/problem.js';

/** How long a refused upgrade's answer may take to reach the peer before the socket is destroyed. */
const problemFlushMsMax = 2_000;

/** Anything that is not an HttpProblem is a bug on our side; the client learns only "500". */
export function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  return new HttpProblem(500, { detail: 'subscription could not be set up' });
}

export function writeProblemToSocket(socket: Duplex, problem: HttpProblem): void {
  const body = JSON.stringify(problem.toJSON());
  const headers: Record<string, string> = {
    ...problem.headers,
    'Content-Type': problemMediaType,
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  };
  const head = [`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? problem.title}`];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // end() flushes the answer first; the timer frees the socket even if the peer never reads it.
  const timer = setTimeout(() => socket.destroy(), problemFlushMsMax).unref();
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => {
    clearTimeout(timer);
    socket.destroy();
  });
}

export function writeProblemToResponse(res: ServerResponse, problem: HttpProblem): void {
  const body = JSON.stringify(problem.toJSON());
  res.writeHead(problem.status, {
    ...problem.headers,
    'Content-Type': problemMediaType,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
