// The MCP server of `lockstep mcp`, over MCP's streamable HTTP transport at /mcp of a control-plane
// member's API, for agent hosts that connect rather than spawn. A session is bound to the bearer
// token that opened it: every later request of the session must carry the same one, and the
// session's tools call this member's own control API with it, so the control plane authorizes
// each call exactly as it would one from clusterctl. Sessions are bounded in number and expire
// when idle.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Problem } from '../model/problem.js';
import { createMcpServer } from './mcp.js';

/** Open sessions at most; a new one beyond them is refused until one closes or expires. */
export const mcpSessionsMax = 64;
/** A session nobody used this long is closed. */
export const mcpSessionIdleMs = 10 * 60_000;

interface Session {
  readonly transport: StreamableHTTPServerTransport;
  readonly authorization: string;
  usedAtMs: number;
}

/** `open`: the cluster runs open (development): no token is needed. */
export type McpHttpHandler = (req: IncomingMessage, res: ServerResponse, open: boolean) => Promise<void>;

/** The /mcp handler of the member whose API is at `selfUrl`. The caller is already authenticated
 *  by the API (a request without a valid credential never reaches it). */
export function mcpHttpHandler(selfUrl: string): McpHttpHandler {
  const sessions = new Map<string, Session>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, session] of sessions) {
      if (now - session.usedAtMs > mcpSessionIdleMs) {
        sessions.delete(id);
        void session.transport.close();
      }
    }
  }, 30_000);
  sweep.unref();

  return async (req, res, open) => {
    const authorization = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (bearer === undefined && !open) throw new Problem('unauthorized', { detail: 'the MCP endpoint takes a bearer token (its tools act with it)', headers: { 'WWW-Authenticate': 'Bearer realm="lockstep"' } });
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId);
      if (session === undefined) throw new Problem('not-found', { detail: 'no such MCP session (it closed or expired): initialize a new one' });
      // A session acts with the token that opened it, and only for its holder.
      if (session.authorization !== authorization) throw new Problem('forbidden', { detail: 'this MCP session was opened with another token' });
      session.usedAtMs = Date.now();
      await session.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') throw new Problem('invalid', { detail: 'an MCP session starts with a POST of initialize' });
    if (sessions.size >= mcpSessionsMax) throw new Problem('unavailable', { detail: `${mcpSessionsMax} MCP sessions are open: close one, or wait for an idle one to expire`, headers: { 'Retry-After': '10' } });
    const { server, ready } = createMcpServer({ controlUrls: [selfUrl], ...(bearer === undefined ? {} : { token: bearer }) });
    await ready;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, authorization, usedAtMs: Date.now() });
      },
    });
    transport.onclose = () => {
      for (const [id, session] of sessions) if (session.transport === transport) sessions.delete(id);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
}
