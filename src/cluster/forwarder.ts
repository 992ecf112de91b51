// Any node answers any app: a request for an app this node does not host goes to the nearest
// node that does (lowest measured round trip, then same region, then id), REST, SSE and
// WebSocket alike. The answer passes back unchanged; the serving node names itself in
// X-Lockstep-Served-By and this node adds X-Lockstep-Forwarded-By. A request forwarded once is
// never forwarded again (a stale directory must not make two nodes bounce it).
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import type { NodeId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import type { Directory } from './control-protocol.js';
import { clientRegionHeader, delay, type WanSimulation } from './wan.js';

export const forwardedByHeader = 'x-lockstep-forwarded-by';
/** Headers that describe one connection, not the request (RFC 9110 7.6.1). */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'host', clientRegionHeader]);
/** How often every other node's round trip is measured (by /_health probes only: a forwarded
 *  request's time includes the work it asked for, which says nothing of the distance). */
const probeIntervalMs = 5_000;
const probeTimeoutMs = 2_000;
/** Weight of a new round-trip sample in the moving average. */
const rttSampleWeight = 0.3;
/** A forwarded request's answer must start within this long. */
const forwardHeadersTimeoutMs = 30_000;

export interface ForwardTarget {
  readonly id: NodeId;
  readonly url: string;
  readonly region: string;
}

export class Forwarder {
  private readonly rttMs = new Map<NodeId, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly self: { readonly id: NodeId; readonly region: string },
    private readonly directory: () => Directory | undefined,
    private readonly logger: Logger,
    /** Simulated wide-area latency between this node and the target (tests, benchmarks). */
    private readonly wan: WanSimulation | undefined = undefined,
    /** The cluster's own credential, for the health probes (undefined: open). */
    private readonly authorization: string | undefined = undefined,
  ) {}

  private oneWayTo(region: string): number {
    return this.wan?.between(this.self.region, region) ?? 0;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.probe(), probeIntervalMs);
    this.timer.unref();
  }

  /** Measures round trips now (the directory just arrived, or changed). */
  probeSoon(): void {
    setTimeout(() => void this.probe(), 0).unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The nearest up node hosting `app`, other than this one. */
  target(app: string): ForwardTarget | undefined {
    const directory = this.directory();
    const entry = directory?.apps.find((candidate) => candidate.name === app);
    if (directory === undefined || entry === undefined) return undefined;
    const hosts = new Set([...entry.voters, ...entry.learners]);
    const candidates = directory.nodes.filter((node) => hosts.has(node.id) && node.id !== this.self.id && (node.state === 'up' || node.state === 'draining'));
    candidates.sort((a, b) => {
      // A draining node is about to hand its replicas away: only if nothing else hosts the app.
      const drainingA = a.state === 'draining' ? 1 : 0;
      const drainingB = b.state === 'draining' ? 1 : 0;
      if (drainingA !== drainingB) return drainingA - drainingB;
      const rttA = this.rttMs.get(a.id) ?? Number.POSITIVE_INFINITY;
      const rttB = this.rttMs.get(b.id) ?? Number.POSITIVE_INFINITY;
      if (rttA !== rttB) return rttA - rttB;
      const localA = a.region === this.self.region ? 0 : 1;
      const localB = b.region === this.self.region ? 0 : 1;
      if (localA !== localB) return localA - localB;
      return a.id < b.id ? -1 : 1;
    });
    const best = candidates[0];
    return best === undefined ? undefined : { id: best.id, url: best.url, region: best.region };
  }

  /** Forwards a request for `app` to the nearest node hosting it (AppForwarding). */
  request(req: IncomingMessage, res: ServerResponse, app: string): Promise<number> | undefined {
    if (Forwarder.wasForwarded(req)) return undefined;
    const target = this.target(app);
    return target === undefined ? undefined : this.forward(req, res, target);
  }

  /** Forwards a WebSocket upgrade for `app` (AppForwarding). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, app: string): boolean {
    if (Forwarder.wasForwarded(req)) return false;
    const target = this.target(app);
    if (target === undefined) return false;
    this.forwardUpgrade(req, socket, head, target);
    return true;
  }

  /** Whether this request already went through a forwarding node. */
  static wasForwarded(req: IncomingMessage): boolean {
    return req.headers[forwardedByHeader] !== undefined;
  }

  /** Proxies the request to `target` and streams its answer back; returns the status. */
  async forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget): Promise<number> {
    const method = (req.method ?? 'GET').toUpperCase();
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const oneWayMs = this.oneWayTo(target.region);
    await delay(oneWayMs);
    const answer = await request(`${target.url}${req.url ?? '/'}`, {
      method: method as 'GET',
      headers: { ...forwardHeaders(req.headers), [forwardedByHeader]: this.self.id },
      ...(hasBody ? { body: req } : {}),
      headersTimeout: forwardHeadersTimeoutMs,
      bodyTimeout: 0, // SSE streams stay open
    });
    await delay(oneWayMs);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !hopByHop.has(name)) headers[name] = value;
    headers['X-Lockstep-Forwarded-By'] = this.self.id;
    res.writeHead(answer.statusCode, headers);
    res.flushHeaders();
    const closed = (): void => {
      answer.body.destroy();
    };
    res.once('close', closed);
    try {
      await pipeline(answer.body, res);
    } catch {
      // The client or the serving node went away mid-stream: nothing more to say to either.
    } finally {
      res.off('close', closed);
    }
    return answer.statusCode;
  }

  /** Passes a WebSocket upgrade through to `target` and splices the two connections. */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: ForwardTarget): void {
    const url = new URL(target.url);
    // (Simulated latency is not applied to a WebSocket's frames, only to REST and SSE.)
    const upstream = httpRequest({
      host: url.hostname,
      port: url.port,
      path: req.url ?? '/',
      method: 'GET',
      headers: { ...req.headers, host: url.host, [forwardedByHeader]: this.self.id },
    });
    upstream.once('upgrade', (answer, upstreamSocket, upstreamHead) => {
      const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}`];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i] as string}: ${answer.rawHeaders[i + 1] as string}`);
      lines.push(`X-Lockstep-Forwarded-By: ${this.self.id}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.pipe(socket).pipe(upstreamSocket);
      const close = (): void => {
        socket.destroy();
        upstreamSocket.destroy();
      };
      socket.once('error', close).once('close', close);
      upstreamSocket.once('error', close).once('close', close);
    });
    upstream.once('response', (answer) => {
      // Refused upstream (not found, unavailable): hand its answer back as is.
      const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        const name = answer.rawHeaders[i] as string;
        if (!hopByHop.has(name.toLowerCase())) lines.push(`${name}: ${answer.rawHeaders[i + 1] as string}`);
      }
      lines.push('Connection: close');
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      answer.pipe(socket);
    });
    upstream.once('error', (error) => {
      this.logger.debug({ err: error, target: target.id }, 'forwarded upgrade failed');
      socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    upstream.end();
  }

  private sample(node: NodeId, ms: number): void {
    const previous = this.rttMs.get(node);
    this.rttMs.set(node, previous === undefined ? ms : previous * (1 - rttSampleWeight) + ms * rttSampleWeight);
  }

  private async probe(): Promise<void> {
    const directory = this.directory();
    if (directory === undefined) return;
    await Promise.all(
      directory.nodes
        .filter((node) => node.id !== this.self.id && node.state !== 'down')
        .map(async (node) => {
          const started = performance.now();
          try {
            await delay(this.oneWayTo(node.region));
            const answer = await request(`${node.url}/_health`, { headersTimeout: probeTimeoutMs, bodyTimeout: probeTimeoutMs, ...(this.authorization === undefined ? {} : { headers: { authorization: this.authorization } }) });
            await answer.body.dump();
            await delay(this.oneWayTo(node.region));
            this.sample(node.id, performance.now() - started);
          } catch {
            this.rttMs.delete(node.id);
          }
        }),
    );
  }

  /** Measured round trips, for /_topology. */
  roundTrips(): Record<NodeId, number> {
    return Object.fromEntries([...this.rttMs].map(([id, ms]) => [id, Math.round(ms * 100) / 100]));
  }
}

function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  return out;
}
