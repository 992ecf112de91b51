// The client: one object per app that makes a fleet of nodes feel like one nearby, consistent
// server. Each call goes to the nearest healthy node that serves the app (nodes.ts); carries
// the session index (the highest X-Lockstep-Index seen), so a read after a write is never older
// than the write, on whatever node it lands; gives every write an Idempotency-Key kept across
// its retries, so a retry after a failover applies nothing twice; and retries what may succeed
// elsewhere (network failures, 502/503/504) on another node, with backoff and jitter, within
// one deadline per call.
import { DeadlineExceededError, errorOf, LockstepError, NotFoundError } from './errors.js';
import { NodeSelector, type Candidate } from './nodes.js';
import type { Query } from './query.js';
import { subscribe, type StreamSource, type SubscribeOptions, type SubscriptionHandle, type WebSocketClass } from './subscription.js';

export type Consistency = 'session' | 'linearizable' | 'stale';

export interface ConnectOptions {
  /** Base URLs of any nodes of the fleet (one is enough: it names the others). */
  readonly seeds: readonly string[];
  readonly app: string;
  /** A bearer token (lst_… or lsa_…) for a secured cluster. */
  readonly token?: string;
  /** Where the client runs. Breaks round-trip ties in favour of that region's nodes, and is sent
   *  as X-Lockstep-Client-Region (nodes that simulate wide-area latency act on it). */
  readonly region?: string;
  /** Total time a call may take, retries included (default 10,000 ms). */
  readonly deadlineMs?: number;
  /** How often the topology and round trips are measured again (default 30,000 ms). */
  readonly refreshEveryMs?: number;
  /** How long one attempt may take before the call moves to another node (default 5,000 ms:
   *  above a node's own request timeout, so a node that hangs costs one attempt, not the
   *  whole deadline). */
  readonly attemptTimeoutMs?: number;
  /** The WebSocket class subscriptions use (default: the runtime's own, as in browsers and
   *  Node 22+; the `ws` package's on Node 20). `false`: Server-Sent Events only. */
  readonly webSocket?: WebSocketClass | false;
}

export interface CallOptions {
  readonly consistency?: Consistency;
  readonly deadlineMs?: number;
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** The node that answered. */
  readonly node: string;
}

/** How long a node may wait for the session index before the client tries another. */
const sessionWaitMs = 1_000;
const backoffBaseMs = 50;
const backoffCapMs = 1_000;
const retryableStatuses = new Set([502, 503, 504]);

export async function connect(options: ConnectOptions): Promise<Client> {
  if (options.seeds.length === 0) throw new Error('connect needs at least one seed URL');
  const client = new Client(options);
  await client.refresh();
  return client;
}

export class Client {
  private readonly selector: NodeSelector;
  private index = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly closing = new AbortController();

  constructor(private readonly options: ConnectOptions) {
    this.selector = new NodeSelector({ seeds: options.seeds, app: options.app, region: options.region, headers: () => this.baseHeaders() });
    this.timer = setInterval(() => void this.selector.refresh().catch(() => undefined), options.refreshEveryMs ?? 30_000);
    (this.timer as { unref?: () => void }).unref?.();
  }

  get app(): string {
    return this.options.app;
  }

  /** The session token: the highest log index of this app the client has seen. */
  sessionIndex(): number {
    return this.index;
  }

  /** The nodes, nearest healthy first, with their measured round trips. */
  nodes(): readonly { readonly id: string; readonly url: string; readonly region: string | undefined; readonly rttMs: number | undefined; readonly down: boolean }[] {
    return this.selector.ranked().map(({ id, url, region, rttMs, down }) => ({ id, url, region, rttMs, down }));
  }

  refresh(): Promise<void> {
    return this.selector.refresh();
  }

  table<T extends object = Record<string, unknown>>(name: string): Table<T> {
    return new Table<T>(this, name);
  }

  /** Stops the refresh timer and every subscription. */
  close(): void {
    clearInterval(this.timer);
    this.closing.abort();
  }

  /** What subscriptions use of the client: node choice, credentials, the session index. */
  streamSource(): StreamSource {
    return {
      app: this.options.app,
      closed: this.closing.signal,
      pick: async (exclude) => {
        const byUrl = new Set(exclude);
        let chosen = this.selector.ranked().find((candidate) => !byUrl.has(candidate.url) && !candidate.down);
        if (chosen === undefined) {
          await this.selector.refresh().catch(() => undefined);
          const ranked = this.selector.ranked();
          chosen = ranked.find((candidate) => !byUrl.has(candidate.url)) ?? ranked[0];
        }
        if (chosen === undefined) throw new Error('no node serves the app');
        return chosen.url;
      },
      headers: () => this.baseHeaders(),
      failed: (url) => {
        const candidate = this.selector.ranked().find((node) => node.url === url);
        if (candidate !== undefined) this.selector.failed(candidate);
      },
      observe: (header) => this.observe(header),
      webSocket: this.webSocketClass(),
      token: this.options.token,
    };
  }

  private webSocketClass(): WebSocketClass | undefined {
    if (this.options.webSocket === false) return undefined;
    return this.options.webSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  }

  private baseHeaders(): Record<string, string> {
    return {
      ...(this.options.token === undefined ? {} : { authorization: `Bearer ${this.options.token}` }),
      ...(this.options.region === undefined ? {} : { 'x-lockstep-client-region': this.options.region }),
    };
  }

  /**
   * One call: `path` is below the app (`Product/p1`, `Stats/`). A write (any method but GET and
   * HEAD) carries one Idempotency-Key across all its attempts. Throws the typed error of a 4xx
   * or 5xx answer, or DeadlineExceededError when no node answered in time.
   */
  async call(method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<Answer> {
    const deadlineMs = options.deadlineMs ?? this.options.deadlineMs ?? 10_000;
    const deadline = Date.now() + deadlineMs;
    const consistency = options.consistency ?? 'session';
    const write = method !== 'GET' && method !== 'HEAD';
    const key = write ? randomKey() : undefined;
    /** Nodes that failed this call: tried again only when no other is left. */
    const avoid = new Set<string>();
    let lastError: unknown;
    for (let attempt = 0; ; attempt++) {
      const candidate = this.pick(avoid);
      if (candidate === undefined) await this.selector.refresh().catch((error: unknown) => (lastError = error));
      else {
        const headers: Record<string, string> = { ...this.baseHeaders(), accept: 'application/json', 'x-lockstep-consistency': consistency };
        if (consistency !== 'stale' && this.index > 0) {
          headers['x-lockstep-min-index'] = String(this.index);
          headers['x-lockstep-min-index-wait-ms'] = String(sessionWaitMs);
        }
        if (key !== undefined) headers['idempotency-key'] = key;
        if (body !== undefined) headers['content-type'] = 'application/json';
        try {
          const response = await fetch(`${candidate.url}/${encodeURIComponent(this.options.app)}/${path}`, {
            method,
            headers,
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            signal: AbortSignal.timeout(Math.max(1, Math.min(deadline - Date.now(), this.options.attemptTimeoutMs ?? 5_000))),
          });
          const text = await response.text();
          this.observe(response.headers.get('x-lockstep-index'));
          if (!retryableStatuses.has(response.status)) {
            if (response.status >= 400) throw errorOf(response.status, text, candidate.id);
            return { status: response.status, headers: response.headers, body: text, node: candidate.id };
          }
          lastError = errorOf(response.status, text, candidate.id);
        } catch (error) {
          if (error instanceof LockstepError) throw error;
          lastError = error;
        }
        avoid.add(candidate.id);
        this.selector.failed(candidate);
      }
      const pause = Math.random() * Math.min(backoffCapMs, backoffBaseMs * 2 ** attempt);
      if (Date.now() + pause >= deadline) throw new DeadlineExceededError(deadlineMs, attempt + 1, lastError);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  private pick(avoid: ReadonlySet<string>): Candidate | undefined {
    const ranked = this.selector.ranked();
    return ranked.find((candidate) => !avoid.has(candidate.id) && !candidate.down) ?? ranked.find((candidate) => !avoid.has(candidate.id)) ?? ranked[0];
  }

  private observe(header: string | null): void {
    const index = header === null ? Number.NaN : Number(header);
    if (Number.isSafeInteger(index) && index > this.index) this.index = index;
  }
}

/** One table's REST surface. */
export class Table<T extends object> {
  constructor(
    private readonly client: Client,
    readonly name: string,
  ) {}

  private path(id?: string | number): string {
    return id === undefined ? `${encodeURIComponent(this.name)}/` : `${encodeURIComponent(this.name)}/${encodeURIComponent(String(id))}`;
  }

  /** The record, or undefined when it does not exist. */
  async get(id: string | number, options?: CallOptions): Promise<T | undefined> {
    try {
      return JSON.parse((await this.client.call('GET', this.path(id), undefined, options)).body) as T;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** Creates or replaces the record. */
  async put(id: string | number, value: Omit<T, never>, options?: CallOptions): Promise<void> {
    await this.client.call('PUT', this.path(id), value, options);
  }

  /** Merges attributes into the record (null removes one). */
  async patch(id: string | number, value: Partial<T>, options?: CallOptions): Promise<void> {
    await this.client.call('PATCH', this.path(id), value, options);
  }

  async delete(id: string | number, options?: CallOptions): Promise<void> {
    await this.client.call('DELETE', this.path(id), undefined, options);
  }

  /** POST to the collection: the new record's id (from Location) and the answer's body. */
  async create(value: Partial<T>, options?: CallOptions): Promise<{ readonly id: string | undefined; readonly body: unknown }> {
    const answer = await this.client.call('POST', this.path(), value, options);
    const location = answer.headers.get('location');
    const id = location === null ? undefined : decodeURIComponent(location.slice(location.lastIndexOf('/') + 1));
    return { id, body: answer.body === '' ? undefined : (JSON.parse(answer.body) as unknown) };
  }

  /** Changes to the table (or one record, `id`), from `since` or from now. Reconnects to
   *  another node after a failure and resumes where it stopped: no gaps, no duplicates; a
   *  `reset` (the node's retained window no longer reaches back) calls `onReset`. */
  subscribe(options: SubscribeOptions<T>): SubscriptionHandle {
    return subscribe(this.client.streamSource(), this.name, options);
  }

  /** Records matching a query: a string in the REST query language, or a `where(...)` builder. */
  async query(query: string | Query<T>, options?: CallOptions): Promise<T[]> {
    const text = typeof query === 'string' ? query : query.toString();
    return JSON.parse((await this.client.call('GET', `${this.path()}${text === '' ? '' : `?${text}`}`, undefined, options)).body) as T[];
  }
}

function randomKey(): string {
  const crypto = globalThis.crypto;
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
