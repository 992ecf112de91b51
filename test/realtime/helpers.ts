// Test fixtures for the real-time layer: an in-memory change log with a retained window, a real
// node:http server on 127.0.0.1, and WebSocket / SSE clients that record what they receive.

import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { problemStatus, renderProblem } from '../../src/http/problem.js';
import type { ChangeEvent } from '../../src/model/change-event.js';
import { Problem } from '../../src/model/problem.js';
import { matchesFilter } from '../../src/realtime/filter.js';
import { ChangeHub } from '../../src/realtime/hub.js';
import type { HubLimits } from '../../src/realtime/limits.js';
import { createRealtime, type Realtime, type RealtimeTarget } from '../../src/realtime/server.js';
import type { ChangeSource, ReadSinceResult, SubscriptionFilter } from '../../src/realtime/types.js';

/** Every wait in these tests gives up after this long and fails with what it saw. */
export const waitMsMax = 10_000;

/** What a test commits: `index` comes from the log, `version` defaults to 1, and `value` may be
 *  any JSON (the hub never looks inside it; small strings and numbers keep the messages short),
 *  so this is looser than ChangeEvent and append() casts. */
interface EventInit {
  readonly type: ChangeEvent['type'];
  readonly table?: string;
  readonly id?: string | number;
  readonly value?: unknown;
  readonly version?: number;
}

/** An array log that keeps the events of the last `retainedIndexes` indexes. */
export class MemoryChangeSource implements ChangeSource {
  readonly all: ChangeEvent[] = [];
  private retained: ChangeEvent[] = [];
  private applied = 0;
  private oldestRetained = 1;

  constructor(private readonly retainedIndexes: number) {}

  appliedIndex(): number {
    return this.applied;
  }

  /** Appends one log entry producing `inits` (possibly none: an entry without changes). */
  append(inits: readonly EventInit[]): ChangeEvent[] {
    this.applied += 1;
    const events = inits.map((init) => ({ version: 1, ...init, index: this.applied }) as ChangeEvent);
    this.all.push(...events);
    this.retained.push(...events);
    this.oldestRetained = Math.max(this.oldestRetained, this.applied - this.retainedIndexes + 1);
    this.retained = this.retained.filter((event) => event.index >= this.oldestRetained);
    return events;
  }

  readSince(since: number, filter: SubscriptionFilter): ReadSinceResult {
    if (since + 1 < this.oldestRetained) return { reset: true, oldestIndex: this.oldestRetained };
    return { events: this.retained.filter((event) => event.index > since && matchesFilter(event, filter)) };
  }

  expected(since: number, filter: SubscriptionFilter): ChangeEvent[] {
    return this.all.filter((event) => event.index > since && matchesFilter(event, filter));
  }
}

/** The host's side of a commit: advance the log, then publish synchronously. */
export function commit(source: MemoryChangeSource, hub: ChangeHub, inits: readonly EventInit[]): ChangeEvent[] {
  const events = source.append(inits);
  hub.publish(events);
  return events;
}

/** The JSON a subscriber should receive for an event (undefined fields vanish, as on the wire). */
export function wire(event: ChangeEvent): unknown {
  return JSON.parse(JSON.stringify({ type: event.type, table: event.table, id: event.id, value: event.value, index: event.index, version: event.version }));
}

export interface TestNode {
  readonly server: Server;
  readonly realtime: Realtime;
  readonly hub: ChangeHub;
  readonly source: MemoryChangeSource;
  readonly port: number;
  stop(): Promise<void>;
}

/** Paths: /<app>/ (app-wide), /<app>/<Table>/ (collection), /<app>/<Table>/<id> (record). Only app "shop" exists. */
function resolveTarget(req: IncomingMessage, hub: ChangeHub): RealtimeTarget {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const [app, table, id, ...rest] = url.pathname.split('/').slice(1);
  if (app !== 'shop' || rest.length > 0) throw new Problem('not-found', { detail: `no app at ${url.pathname}` });
  const filter: SubscriptionFilter =
    table === undefined || table === '' ? {} : id === undefined || id === '' ? { table } : { table, id: decodeURIComponent(id) };
  return { hub, filter, headers: { 'X-Lockstep-Index': String(hub.counters().subscriptionsTotal) } };
}

export async function startNode(limits: Partial<HubLimits> = {}, retainedIndexes = 1_000): Promise<TestNode> {
  const source = new MemoryChangeSource(retainedIndexes);
  const hub = new ChangeHub(source, limits);
  const realtime = createRealtime({ resolve: (req) => resolveTarget(req, hub), renderProblem, limits });
  const server = http.createServer((req, res) => {
    if (req.headers.accept !== 'text/event-stream') {
      res.writeHead(406).end();
      return;
    }
    let target: RealtimeTarget;
    try {
      target = resolveTarget(req, hub);
    } catch (error) {
      res.writeHead(error instanceof Problem ? problemStatus(error) : 500).end();
      return;
    }
    realtime.handleSse(req, res, target);
  });
  server.on('upgrade', (req, socket, head) => realtime.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    realtime,
    hub,
    source,
    port,
    async stop() {
      await realtime.close('test over');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function waitFor(what: string, condition: () => boolean, describe: () => unknown = () => ''): Promise<void> {
  const deadline = Date.now() + waitMsMax;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${waitMsMax} ms waiting for ${what}; saw ${JSON.stringify(describe()).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface WsClient {
  readonly socket: WebSocket;
  readonly messages: Record<string, unknown>[];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly upgradeHeaders: http.IncomingHttpHeaders;
  /** Bytes of all text messages received so far. */
  receivedBytes(): number;
}

export async function openWs(port: number, path: string): Promise<WsClient> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  let upgradeHeaders: http.IncomingHttpHeaders = {};
  socket.once('upgrade', (res: IncomingMessage) => (upgradeHeaders = res.headers));
  const messages: Record<string, unknown>[] = [];
  let bytes = 0;
  socket.on('message', (data: WebSocket.RawData) => {
    const text = data.toString();
    bytes += text.length;
    messages.push(JSON.parse(text) as Record<string, unknown>);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, messages, closed, upgradeHeaders, receivedBytes: () => bytes };
}

/** Opens a WebSocket that the server refuses; resolves with the HTTP status and body. */
export async function refusedWs(port: number, path: string): Promise<{ status: number; contentType: string; body: string }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (_req: http.ClientRequest, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
    });
    socket.on('open', () => reject(new Error(`expected ${path} to be refused, but it opened`)));
    socket.on('error', () => {});
  });
}

export interface SseEvent {
  readonly event: string | undefined;
  readonly id: string | undefined;
  readonly data: string;
}

export interface SseClient {
  readonly response: IncomingMessage;
  readonly events: SseEvent[];
  readonly comments: string[];
  readonly ended: Promise<void>;
  /** Parsed `data` of plain message events. */
  messages(): Record<string, unknown>[];
  close(): void;
}

export async function openSse(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const request = http.get({ host: '127.0.0.1', port, path, headers: { Accept: 'text/event-stream', ...headers } });
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let pending = '';
  let fields: { event?: string; id?: string; data: string[] } = { data: [] };
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line === '') {
        if (fields.data.length > 0) events.push({ event: fields.event, id: fields.id, data: fields.data.join('\n') });
        fields = { data: [] };
      } else if (line.startsWith(':')) {
        comments.push(line);
      } else {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (name === 'data') fields.data.push(value);
        else if (name === 'id') fields.id = value;
        else if (name === 'event') fields.event = value;
      }
      newline = pending.indexOf('\n');
    }
  });
  const ended = new Promise<void>((resolve) => {
    response.once('end', resolve);
    response.once('close', resolve);
  });
  return {
    response,
    events,
    comments,
    ended,
    messages: () => events.filter((event) => event.event === undefined).map((event) => JSON.parse(event.data) as Record<string, unknown>),
    close: () => request.destroy(),
  };
}

export async function httpGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; contentType: string; body: string }> {
  const request = http.get({ host: '127.0.0.1', port, path, headers });
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  let body = '';
  response.setEncoding('utf8');
  for await (const chunk of response) body += chunk as string;
  return { status: response.statusCode ?? 0, contentType: String(response.headers['content-type']), body };
}
