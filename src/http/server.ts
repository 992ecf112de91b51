// The node's HTTP server: node endpoints (/_health, /_status, /metrics), app REST paths
// (/<app>/<endpoint>/<id>), WebSocket upgrades and SSE, problem+json for every failure, and a
// graceful close that lets in-flight requests finish.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppCodeError } from '../app/app-code-error.js';
import type { AppHost } from '../app/app-host.js';
import { Problem } from '../model/problem.js';
import type { Logger } from '../observability/logger.js';
import { NodeMetrics, type AppGaugeSource } from '../observability/metrics.js';
import { writeProblemToSocket } from '../realtime/problem-response.js';
import { createRealtime, type Realtime, type RealtimeTarget } from '../realtime/server.js';
import type { Operation } from '../security/permissions.js';
import type { GateRequest, RequestGate } from '../security/request-gate.js';
import { allowOrigin, answerPreflight, authorizationOf, selectWsProtocol } from './browser-access.js';
import { asProblem, problemJson, problemMediaType, problemStatus, renderProblem } from './problem.js';
import { answerWriteAudit } from './audit-endpoint.js';
import { answerChecks } from './checks-endpoint.js';
import { handleAppRequest } from './rest.js';

export interface NodeServerOptions {
  readonly host: string;
  readonly port: number;
  readonly apps: ReadonlyMap<string, AppHost>;
  readonly logger: Logger;
  readonly nodeId: string;
  /** Cluster state of an app's group on this node, for /_status (absent on a single node). */
  readonly groupStatus?: (app: string) => Record<string, unknown> | undefined;
  /** Handles /_admin/... (cluster nodes only). */
  readonly admin?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<number>;
  /** This node's place in the cluster, for /_topology. */
  readonly topology?: () => Record<string, unknown>;
  /** Metrics shared with other parts of the node (default: a registry of this server's own). */
  readonly metrics?: NodeMetrics;
  /** Sends requests for apps this node does not host to a node that does (cluster nodes). */
  readonly forwarding?: AppForwarding;
  /** Simulated round trip to the client that sent `req` (wide-area simulation only). */
  readonly clientRoundTripMs?: (req: IncomingMessage) => number;
  /** Authenticates and authorizes every request (absent: open, as `lockstep dev` runs). */
  readonly gate?: RequestGate;
}

function gateRequest(req: IncomingMessage, path: string): GateRequest {
  return { method: req.method ?? 'GET', path: path.slice(0, 512), authorization: authorizationOf(req), source: req.socket.remoteAddress ?? 'unknown' };
}

/** The operation an app request asks for: a read, a subscription (SSE) or a write. */
function operationOf(req: IncomingMessage): Operation {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return req.headers.accept?.includes('text/event-stream') === true ? 'subscribe' : 'read';
  return 'write';
}

/** How a node answers for an app it does not host. */
export interface AppForwarding {
  /** Forwards the request and resolves with the answer's status; undefined: nowhere to send it. */
  request(req: IncomingMessage, res: ServerResponse, app: string): Promise<number> | undefined;
  /** Forwards a WebSocket upgrade; false: nowhere to send it. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, app: string): boolean;
}

/** The status recorded for a request whose client closed the connection before the answer. */
const clientClosedStatus = 499;

/** How long a graceful close waits for in-flight requests before closing their sockets. */
export const shutdownGraceMs = 10_000;
/** Longest request path accepted, in bytes. */
export const urlBytesMax = 8 * 1024;

interface ParsedPath {
  readonly app: string;
  readonly endpoint: string;
  /** undefined: the collection path. */
  readonly id: string | undefined;
  readonly search: string;
}

/** RFC 9112 3.2.2: a server must accept the absolute form (`GET http://host/path`) as well as
 *  the origin form (`GET /path`); everything below works on the origin form. */
/** Versions listed per app in /_status, newest last. */
const statusVersionsMax = 50;

export function originForm(url: string | undefined): string {
  if (url === undefined || url === '') return '/';
  if (url.startsWith('/')) return url;
  const match = /^https?:\/\/[^/?#]*(.*)$/i.exec(url);
  if (match === null) return url;
  const rest = match[1] ?? '';
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}

export function parsePath(url: string): ParsedPath | undefined {
  if (url.length > urlBytesMax) throw new Problem('uri-too-long', { detail: `the URL is longer than ${urlBytesMax} bytes` });
  const queryStart = url.indexOf('?');
  const pathname = queryStart === -1 ? url : url.slice(0, queryStart);
  const search = queryStart === -1 ? '' : url.slice(queryStart + 1);
  const first = pathname.indexOf('/', 1);
  if (first === -1) return undefined;
  const second = pathname.indexOf('/', first + 1);
  const app = decode(pathname.slice(1, first));
  const endpoint = decode(second === -1 ? pathname.slice(first + 1) : pathname.slice(first + 1, second));
  const rest = second === -1 ? '' : pathname.slice(second + 1);
  if (app === '' || endpoint === '') return undefined;
  return { app, endpoint, id: rest === '' ? undefined : decode(rest), search };
}

/** parsePath, or undefined for a path it refuses (the caller answers it the usual way). */
function safeParsePath(url: string): ParsedPath | undefined {
  try {
    return parsePath(url);
  } catch {
    return undefined;
  }
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new Problem('invalid', { detail: `malformed percent-encoding in '${segment.slice(0, 64)}'` });
  }
}

export function appGaugeSources(apps: ReadonlyMap<string, AppHost>): AppGaugeSource[] {
  return [...apps.values()].map((app) => ({
    name: app.name,
    appliedIndex: () => app.appliedIndex(),
    subscriberCount: () => app.hub.subscriberCount(),
    dataFileBytes: () => app.store.dataFileBytes(),
  }));
}

export class NodeServer {
  readonly server: Server;
  readonly metrics: NodeMetrics;
  readonly realtime: Realtime;
  private inFlight = 0;
  private closing = false;

  constructor(private readonly options: NodeServerOptions) {
    this.metrics = options.metrics ?? new NodeMetrics(() => appGaugeSources(options.apps));
    this.realtime = createRealtime({ resolve: (req) => this.resolveSubscription(req), renderProblem, selectProtocol: selectWsProtocol });
    this.metrics.registerRealtime(() => this.realtime.counters());
    this.server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 60_000 }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.on('upgrade', (req, socket, head) => {
      req.url = originForm(req.url);
      const path = safeParsePath(req.url);
      const upgrade = (): void => {
        if (path !== undefined && !this.options.apps.has(path.app) && this.options.forwarding?.upgrade(req, socket, head, path.app) === true) return;
        this.realtime.handleUpgrade(req, socket, head);
      };
      const { gate } = this.options;
      if (gate === undefined || gate.isOpen()) return upgrade();
      // Checked before the upgrade, while an HTTP answer is still possible.
      socket.pause();
      const pathname = (req.url ?? '/').split('?')[0] ?? '/';
      gate
        .admit(gateRequest(req, pathname), ...(path === undefined ? [] : [{ op: 'subscribe' as const, app: path.app, table: path.endpoint }]))
        .then(() => {
          socket.resume();
          upgrade();
        })
        .catch((error: unknown) => writeProblemToSocket(socket, renderProblem(asProblem(error))));
    });
    // Node hands CONNECT to this event and, without a listener, closes the socket unanswered.
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      const { status, title, body } = renderProblem(new Problem('method-not-allowed', { detail: 'CONNECT is not supported: this is not a proxy' }));
      socket.end(`HTTP/1.1 ${status} ${title}\r\nContent-Type: ${problemMediaType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nAllow: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS\r\nConnection: close\r\n\r\n${body}`);
    });
    // Requests Node rejects before routing (headers over its limit, malformed HTTP) still get a
    // problem+json answer.
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return;
      const problem =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? new Problem('headers-too-large', { detail: 'request line and headers exceed 16 KiB' })
          : new Problem('invalid', { detail: 'malformed HTTP request' });
      const { status, title, body } = renderProblem(problem);
      socket.end(`HTTP/1.1 ${status} ${title}\r\nContent-Type: ${problemMediaType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  private resolveSubscription(req: IncomingMessage): RealtimeTarget {
    const path = parsePath(req.url ?? '/');
    const host = path === undefined ? undefined : this.options.apps.get(path.app);
    if (path === undefined || host === undefined) throw new Problem('not-found', { detail: 'no app at this path' });
    const runtime = host.activeRuntime();
    const endpoint = runtime?.endpoints.get(path.endpoint);
    if (runtime === undefined || endpoint?.table === undefined) {
      throw new Problem('not-found', { detail: `app ${path.app} has no table '${path.endpoint}' to subscribe to` });
    }
    const table = endpoint.table;
    let id: string | number | undefined = path.id;
    if (id !== undefined && (table.primaryKeyType === 'Int' || table.primaryKeyType === 'Long')) id = Number(id);
    return {
      hub: host.hub,
      filter: id === undefined ? { table: endpoint.name } : { table: endpoint.name, id },
      headers: { 'X-Lockstep-Version': String(runtime.version), 'X-Lockstep-Index': String(host.appliedIndex()), 'X-Lockstep-Served-By': this.options.nodeId },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    this.inFlight++;
    let app = '';
    let host: AppHost | undefined;
    let table = '';
    let status = 500;
    try {
      if (this.closing) res.setHeader('Connection', 'close');
      allowOrigin(req, res);
      if (answerPreflight(req, res)) {
        status = 204;
        return;
      }
      req.url = originForm(req.url);
      const url = req.url;
      const roundTripMs = this.options.clientRoundTripMs?.(req) ?? 0;
      if (roundTripMs > 0) await new Promise((resolveDelay) => setTimeout(resolveDelay, roundTripMs));
      const gate = this.options.gate;
      const pathname = url.split('?')[0] ?? url;
      if (url.startsWith('/_') || url === '/metrics' || url.startsWith('/metrics?')) {
        if (gate !== undefined) {
          // /_admin is the control plane's; status and metrics are for operators (and the
          // cluster itself); health and topology for anyone with a valid credential.
          if (pathname.startsWith('/_admin/')) await gate.admit(gateRequest(req, pathname), { op: 'cluster' });
          else if (pathname.startsWith('/_audit/')) await gate.admit(gateRequest(req, pathname), { op: 'audit', app: decode(pathname.split('/')[2] ?? '') });
          else if (pathname.startsWith('/_checks/')) await gate.admit(gateRequest(req, pathname), { op: 'deploy', app: decode(pathname.split('/')[2] ?? '') });
          else if (pathname === '/_status' || pathname === '/metrics') await gate.admit(gateRequest(req, pathname), { op: 'operate' }, { op: 'cluster' });
          else await gate.admit(gateRequest(req, pathname));
        }
        status = await this.handleNodeEndpoint(url, req, res);
        return;
      }
      const path = parsePath(url);
      if (path === undefined) {
        if (gate !== undefined) await gate.admit(gateRequest(req, pathname));
        throw new Problem('not-found', { detail: 'paths are /<app>/<Table>/ and /<app>/<Table>/<id>' });
      }
      const principal = gate === undefined ? undefined : await gate.admit(gateRequest(req, pathname), { op: operationOf(req), app: path.app, table: path.endpoint });
      const actor = principal === undefined || principal.open ? undefined : principal.identity;
      host = this.options.apps.get(path.app);
      if (host === undefined) {
        const forwarded = this.options.forwarding?.request(req, res, path.app);
        if (forwarded !== undefined) {
          status = await forwarded;
          return;
        }
        throw new Problem('not-found', { detail: `no app named '${path.app}' on this node` });
      }
      app = host.name;
      res.setHeader('X-Lockstep-Served-By', this.options.nodeId);
      const answered = await handleAppRequest(host, req, res, path.endpoint, path.id, path.search, { metrics: this.metrics, realtime: this.realtime, ...(actor === undefined ? {} : { actor }) });
      status = answered.status;
      table = answered.table;
    } catch (error) {
      status = this.sendError(req, res, error, host);
    } finally {
      this.inFlight--;
      if (app !== '') {
        host?.recordAnswer(status);
        const labels = { app, table, method: req.method ?? 'GET', status: String(status) };
        this.metrics.requests.inc(labels);
        this.metrics.requestSeconds.observe(labels, (performance.now() - started) / 1000);
      }
    }
  }

  private sendError(req: IncomingMessage, res: ServerResponse, error: unknown, host: AppHost | undefined): number {
    // The client went away (closed the connection mid-request): there is nobody to answer, and
    // it is not a server error. Counted under 499, as nginx does, and logged at debug level.
    if (req.destroyed && !(error instanceof Problem)) {
      this.options.logger.debug({ err: error, url: req.url, method: req.method }, 'client closed the request');
      return clientClosedStatus;
    }
    // A Problem (LogUnavailableError included) is an answer; anything else is a bug worth a log line.
    const problem = asProblem(error);
    if (!(error instanceof Problem)) this.options.logger.error({ err: error, url: req.url, method: req.method }, 'request failed');
    if (error instanceof AppCodeError) {
      this.options.logger.error({ err: error.cause, app: error.app, version: error.version, resource: error.resource, method: error.method, url: req.url }, 'app code threw');
      this.metrics.appErrors.inc({ app: error.app, version: String(error.version), resource: error.resource, method: error.method });
    }
    const status = problemStatus(problem);
    if (res.headersSent) {
      res.destroy();
      return status;
    }
    const body = JSON.stringify(problemJson(problem));
    // Every answer of an app says which version and applied index it reflects, errors included.
    const runtime = host?.activeRuntime();
    const position: Record<string, string> =
      host === undefined ? {} : { 'X-Lockstep-Index': String(host.appliedIndex()), ...(runtime === undefined ? {} : { 'X-Lockstep-Version': String(runtime.version) }) };
    res.writeHead(status, { 'Content-Type': problemMediaType, 'Content-Length': String(Buffer.byteLength(body)), ...position, ...problem.headers });
    // A HEAD answer has the headers of the GET answer and no body.
    res.end(req.method === 'HEAD' ? undefined : body);
    return status;
  }

  private async handleNodeEndpoint(url: string, req: IncomingMessage, res: ServerResponse): Promise<number> {
    const path = url.split('?')[0] ?? url;
    if (path.startsWith('/_admin/') && this.options.admin !== undefined) return this.options.admin(req, res, path);
    if (path.startsWith('/_audit/')) return answerWriteAudit(this.options.apps, req, res, url);
    if (path.startsWith('/_checks/')) return answerChecks(this.options.apps, this.options.nodeId, req, res, path);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new Problem('method-not-allowed', { detail: `${path} answers GET only`, headers: { Allow: 'GET, HEAD' } });
    if (path === '/_health') {
      // ?app=<name>: whether this node serves that app (a client picking a node for it asks so).
      const only = new URLSearchParams(url.slice(path.length + 1)).get('app');
      const serving = only === null ? [...this.options.apps.values()] : [this.options.apps.get(only)];
      if (serving[0] === undefined) throw new Problem('not-found', { detail: `app '${only ?? ''}' is not hosted on this node` });
      const ready = serving.every((app) => app !== undefined && app.activeRuntime() !== undefined && app.healthy());
      const status = ready && !this.closing ? 200 : 503;
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: status === 200 ? 'ok' : 'unavailable' }));
      return status;
    }
    if (path === '/_status') {
      const apps = [...this.options.apps.values()].map((app) => {
        const state = app.appliedState();
        return {
          name: app.name,
          ...(this.options.groupStatus?.(app.name) ?? { role: 'single-node' }),
          activeVersion: state.activeVersion,
          activeHash: app.activeRuntime()?.hash,
          lastVersion: state.lastVersion,
          epoch: state.epoch,
          appliedIndex: state.appliedIndex,
          subscribers: app.hub.subscriberCount(),
          dataFileBytes: app.store.dataFileBytes(),
          versions: app.versionHistory(statusVersionsMax),
        };
      });
      const mode = this.options.groupStatus === undefined ? 'single-node' : 'cluster';
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ node: this.options.nodeId, mode, apps }));
      return 200;
    }
    if (path === '/_topology') {
      const topology = this.options.topology?.() ?? { nodes: [{ id: this.options.nodeId }], apps: [...this.options.apps.keys()] };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(topology));
      return 200;
    }
    if (path === '/metrics') {
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType }).end(text);
      return 200;
    }
    throw new Problem('not-found', { detail: `no node endpoint ${path}` });
  }

  /** Stops accepting connections, lets in-flight requests finish (bounded), closes subscriptions. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await this.realtime.close('server shutting down');
    const deadline = Date.now() + shutdownGraceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    this.server.closeAllConnections();
    await closed;
  }
}
