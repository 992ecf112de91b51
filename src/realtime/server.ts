// The real-time entry points a node's HTTP server calls: WebSocket upgrades and SSE streams on
// record and collection paths. Resolving a path to an app's hub and filter is the router's job
// (`resolve`); this module owns the transports, heartbeats, counters and shutdown.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Problem } from '../model/problem.js';
import { emptyCounters, type RealtimeCounters } from './counters.js';
import type { ChangeHub } from './hub.js';
import { resolveHubLimits, type HubLimits } from './limits.js';
import { toProblem, writeProblemToResponse, writeProblemToSocket, type ProblemRenderer } from './problem-response.js';
import { encodeSubscribed, lockstepProtocol } from './messages.js';
import { resumeIndexOf } from './request.js';
import { SseSession } from './sse-session.js';
import type { SubscriptionFilter } from './types.js';
import { WsSession, wsCloseTryAgainLater } from './ws-session.js';

export interface RealtimeTarget {
  readonly hub: ChangeHub;
  readonly filter: SubscriptionFilter;
  /** Extra response headers (e.g. X-Lockstep-Index), sent with the 101 or the SSE 200. */
  readonly headers?: Record<string, string>;
}

export interface Realtime {
  /** http.Server 'upgrade' handler. `resolve` may throw a Problem (src/model/problem.ts): answer it as an
   *  HTTP error response on the socket (problem+json body) and destroy the socket. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Serves an SSE stream for a GET with Accept: text/event-stream (the router calls this). */
  handleSse(req: IncomingMessage, res: ServerResponse, target: RealtimeTarget): void;
  subscriberCount(): number;
  counters(): RealtimeCounters;
  /** Graceful shutdown: tell every subscriber and close. */
  close(reason: string): Promise<void>;
}

export interface RealtimeOptions {
  resolve(req: IncomingMessage): RealtimeTarget;
  /** How a refused request is answered (status, headers, body): the HTTP layer's renderProblem. */
  renderProblem: ProblemRenderer;
  limits?: Partial<HubLimits>;
  /** Which offered WebSocket subprotocol to select (false: none). Default: none. */
  selectProtocol?: (offered: ReadonlySet<string>) => string | false;
}

export function createRealtime(options: RealtimeOptions): Realtime {
  return new RealtimeServer(options);
}

type Session = WsSession | SseSession;

class RealtimeServer implements Realtime {
  private readonly limits: HubLimits;
  private readonly counterValues = emptyCounters();
  private readonly wsSessions = new Set<WsSession>();
  private readonly sseSessions = new Set<SseSession>();
  private readonly wss: WebSocketServer;
  /** Target headers waiting for ws to write the 101 response of the same request. */
  private readonly upgradeHeaders = new WeakMap<IncomingMessage, Record<string, string>>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly sseHeartbeatTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: RealtimeOptions) {
    this.limits = resolveHubLimits(options.limits);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.limits.wsPayloadBytesMax,
      // Compression would hold a zlib context per subscriber and defeat the byte accounting.
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (offered) => (options.selectProtocol ?? (() => false))(offered),
    });
    this.wss.on('headers', (headers: string[], req: IncomingMessage) => {
      const extra = this.upgradeHeaders.get(req);
      if (extra === undefined) return;
      for (const [name, value] of Object.entries(extra)) headers.push(`${name}: ${value}`);
    });
    this.pingTimer = setInterval(() => {
      for (const session of this.wsSessions) session.heartbeat();
    }, this.limits.wsPingIntervalMs).unref();
    this.sseHeartbeatTimer = setInterval(() => {
      for (const session of this.sseSessions) session.heartbeat();
    }, this.limits.sseHeartbeatMs).unref();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let target: RealtimeTarget;
    let since: number | undefined;
    try {
      this.assertOpen();
      target = this.options.resolve(req);
      since = resumeIndexOf(req, false);
      assertReached(target.hub, since);
      this.assertHubHasRoom(target.hub);
    } catch (error) {
      this.counterValues.rejectedRequests += 1;
      writeProblemToSocket(socket, this.options.renderProblem(toProblem(error)));
      return;
    }
    if (target.headers !== undefined) this.upgradeHeaders.set(req, target.headers);
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      this.upgradeHeaders.delete(req);
      this.startWsSession(ws, target, since);
    });
  }

  handleSse(req: IncomingMessage, res: ServerResponse, target: RealtimeTarget): void {
    let since: number | undefined;
    try {
      this.assertOpen();
      since = resumeIndexOf(req, true);
      assertReached(target.hub, since);
      this.assertHubHasRoom(target.hub);
    } catch (error) {
      this.counterValues.rejectedRequests += 1;
      writeProblemToResponse(res, this.options.renderProblem(toProblem(error)));
      return;
    }
    const session = new SseSession(req, res, this.limits, this.counterValues);
    session.start(target.headers);
    this.track(session, this.sseSessions);
    try {
      session.attach(target.hub.subscribe(target.filter, since, session));
    } catch (error) {
      // Headers are out; the stream can only say why it ends.
      session.close(toProblem(error).message);
    }
  }

  subscriberCount(): number {
    return this.wsSessions.size + this.sseSessions.size;
  }

  counters(): RealtimeCounters {
    return { ...this.counterValues, subscriptions: this.subscriberCount() };
  }

  async close(reason: string): Promise<void> {
    this.closed = true;
    const sessions: Session[] = [...this.wsSessions, ...this.sseSessions];
    for (const session of sessions) session.close(reason, 'shutdown');
    // Every session ends by itself or is destroyed after closeGraceMs, so this wait is bounded.
    await Promise.all(sessions.map((session) => session.ended));
    clearInterval(this.pingTimer);
    clearInterval(this.sseHeartbeatTimer);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private startWsSession(ws: WebSocket, target: RealtimeTarget, since: number | undefined): void {
    const session = new WsSession(ws, this.limits, this.counterValues);
    this.track(session, this.wsSessions);
    if (this.closed) {
      session.close('server shutting down');
      return;
    }
    try {
      // Read and sent in the same turn as subscribe, so no event can fall between them.
      if (ws.protocol === lockstepProtocol) session.deliver(encodeSubscribed(since ?? target.hub.appliedIndex()));
      session.attach(target.hub.subscribe(target.filter, since, session));
    } catch (error) {
      // The hub filled up between the check before the upgrade and now.
      session.closeWith(wsCloseTryAgainLater, toProblem(error).message);
    }
  }

  private track<S extends Session>(session: S, sessions: Set<S>): void {
    sessions.add(session);
    this.counterValues.subscriptionsTotal += 1;
    void session.ended.then(() => sessions.delete(session));
  }

  private assertOpen(): void {
    if (this.closed) throw new Problem('unavailable', { detail: 'server shutting down', headers: { 'Retry-After': '1' } });
  }

  private assertHubHasRoom(hub: ChangeHub): void {
    // Checked before the upgrade, while an HTTP answer is still possible.
    if (hub.isFull()) throw new Problem('unavailable', { detail: 'too many subscribers for this app', headers: { 'Retry-After': '5' } });
  }
}

/** A resume point beyond what this node has applied is refused with 503 and Retry-After, not
 *  accepted silently: the client saw that index elsewhere, so this node is behind; it may retry
 *  here shortly or go to another node. */
function assertReached(hub: ChangeHub, since: number | undefined): void {
  if (since === undefined || since <= hub.appliedIndex()) return;
  throw new Problem('unavailable', {
    detail: `since=${since} is beyond index ${hub.appliedIndex()}, the last this node has applied; retry shortly or resume on another node`,
    headers: { 'Retry-After': '1' },
  });
}
