// What a browser needs to use a node from a page of another origin (the client SDK talks to
// whichever node is nearest, so its page is almost never served by that node): CORS answers,
// and a way to present a token on a WebSocket, whose browser API cannot set headers.
//
// CORS is answered for any origin, without Access-Control-Allow-Credentials: browsers then never
// attach ambient credentials (cookies, cached Basic auth) to a cross-origin request, so a page
// can reach a node only with a token it holds itself, in the Authorization header.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { lockstepProtocol } from '../realtime/messages.js';

/** Sec-WebSocket-Protocol names: the client offers `lockstep` and `lockstep.bearer.<token>`;
 *  the server selects `lockstep`, so the token is never echoed back. */
const wsBearerPrefix = 'lockstep.bearer.';

const allowedHeaders = [
  'Authorization',
  'Content-Type',
  'Accept',
  'If-Match',
  'If-None-Match',
  'Idempotency-Key',
  'Last-Event-ID',
  'X-Lockstep-Consistency',
  'X-Lockstep-Min-Index',
  'X-Lockstep-Min-Index-Wait-Ms',
  'X-Lockstep-Client-Region',
].join(', ');
const exposedHeaders = ['ETag', 'Location', 'Retry-After', 'Idempotent-Replayed', 'X-Lockstep-Index', 'X-Lockstep-Version', 'X-Lockstep-Served-By', 'X-Lockstep-Forwarded-By'].join(', ');
/** How long a browser may cache a preflight answer. */
const preflightMaxAgeSeconds = 600;

/** Adds the CORS headers a cross-origin request's answer needs. */
export function allowOrigin(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.origin === undefined) return;
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', exposedHeaders);
}

/** Answers a CORS preflight (OPTIONS with Access-Control-Request-Method); false if it is not one.
 *  A preflight carries no credentials, so it is answered before authentication. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'OPTIONS' || req.headers.origin === undefined || req.headers['access-control-request-method'] === undefined) return false;
  res.writeHead(204, {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Methods': 'GET, HEAD, PUT, PATCH, POST, DELETE',
    'Access-Control-Allow-Headers': allowedHeaders,
    'Access-Control-Max-Age': String(preflightMaxAgeSeconds),
  });
  res.end();
  return true;
}

/** The request's Authorization, or on a WebSocket upgrade the bearer token it offered as a
 *  subprotocol. */
export function authorizationOf(req: IncomingMessage): string | undefined {
  if (req.headers.authorization !== undefined) return req.headers.authorization;
  const offered = req.headers['sec-websocket-protocol'];
  if (offered === undefined) return undefined;
  for (const protocol of offered.split(',')) {
    const name = protocol.trim();
    if (name.startsWith(wsBearerPrefix) && name.length > wsBearerPrefix.length) return `Bearer ${name.slice(wsBearerPrefix.length)}`;
  }
  return undefined;
}

/** ws's protocol choice: `lockstep` when offered; never the bearer name. */
export function selectWsProtocol(offered: ReadonlySet<string>): string | false {
  return offered.has(lockstepProtocol) ? lockstepProtocol : false;
}
