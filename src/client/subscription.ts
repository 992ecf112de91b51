// Change subscriptions that survive node failures. Each connection streams from one node: over
// WebSocket when there is one (browsers, Node 22+, or a class given to connect), else over
// Server-Sent Events read through fetch. A WebSocket that fails to open is tried once over SSE on
// the same node, whose answer says why (a 4xx ends the subscription, anything else moves it).
// On disconnect the subscription reconnects (another node if there is one, with backoff) from
// where it stopped: several events share one index (one transaction), so it remembers the last
// index and how many of its events it delivered, resumes with since = lastIndex - 1 (the server
// sends events with index > since) and drops that many events of lastIndex again: no gaps, no
// duplicates. A live subscription (no `since`) starts after the index the node reports
// (X-Lockstep-Index over SSE, the `subscribed` message over WebSocket), so its first reconnect
// has no gap either.
import { errorOf, type LockstepError } from './errors.js';

/** What a subscription needs of its client (Client.streamSource()). */
export interface StreamSource {
  readonly app: string;
  /** Aborted when the client closes. */
  readonly closed: AbortSignal;
  /** The nearest healthy node's URL, passing over `exclude` while another is left. */
  pick(exclude: ReadonlySet<string>): Promise<string>;
  headers(): Record<string, string>;
  /** A connection to the node failed. */
  failed(url: string): void;
  /** An answer's X-Lockstep-Index, for the session index. */
  observe(header: string | null): void;
  /** The WebSocket class, or undefined for SSE only. */
  readonly webSocket: WebSocketClass | undefined;
  /** Offered as the subprotocol `lockstep.bearer.<token>`: a browser's WebSocket cannot set headers. */
  readonly token: string | undefined;
}

/** What the subscription uses of a WebSocket: the browsers' class, Node 22's, and the `ws`
 *  package's all have it. The third argument (headers) is taken by `ws` and ignored by browsers. */
export interface WebSocketLike {
  readonly protocol: string;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { readonly code: number; readonly reason: string }) => void): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketClass = new (url: string, protocols: string[], options?: { readonly headers: Record<string, string> }) => WebSocketLike;

const backoffBaseMs = 50;
const backoffCapMs = 2_000;

function backoffMs(attempt: number): number {
  return Math.random() * Math.min(backoffCapMs, backoffBaseMs * 2 ** attempt);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export interface ChangeMessage<T = Record<string, unknown>> {
  readonly type: 'put' | 'patch' | 'delete' | 'version';
  readonly table: string;
  readonly id: string | number;
  readonly value?: T;
  readonly index: number;
  readonly version: number;
}

export interface ResetInfo {
  /** The oldest index the node still retains. */
  readonly index: number;
  /** The stream continues after this index. */
  readonly current: number;
}

export interface SubscribeOptions<T> {
  readonly id?: string | number;
  /** Deliver events with index > since (replay); omitted = live from now. */
  readonly since?: number;
  onEvent(event: ChangeMessage<T>): void;
  onReset?(info: ResetInfo): void;
  onError?(error: unknown): void;
}

export interface SubscriptionHandle {
  close(): void;
}

interface WireMessage {
  readonly type?: unknown;
  readonly index?: unknown;
  readonly current?: unknown;
  readonly reason?: unknown;
}

export function subscribe<T>(transport: StreamSource, table: string, options: SubscribeOptions<T>): SubscriptionHandle {
  const controller = new AbortController();
  const onClientClose = (): void => controller.abort();
  transport.closed.addEventListener('abort', onClientClose, { once: true });
  let base: number | undefined = options.since;
  let lastIndex: number | undefined;
  let countAtLast = 0;
  let dropRemaining = 0;

  /** A live subscription learns where its stream starts, so a reconnect before its first event
   *  resumes from there. */
  const startsAfter = (index: number): void => {
    if (base === undefined && lastIndex === undefined && Number.isSafeInteger(index)) base = index;
  };

  const deliver = (text: string): void => {
    const message = JSON.parse(text) as WireMessage;
    if (message.type === 'reset') {
      const info: ResetInfo = { index: Number(message.index), current: Number(message.current) };
      base = info.current;
      lastIndex = undefined;
      countAtLast = 0;
      dropRemaining = 0;
      options.onReset?.(info);
      return;
    }
    if (message.type === 'subscribed') {
      startsAfter(Number(message.index));
      return;
    }
    if (message.type === 'error') throw new Error(`stream ended by the server: ${String(message.reason)}`);
    const index = Number(message.index);
    if (lastIndex !== undefined) {
      if (index < lastIndex) return;
      if (index === lastIndex && dropRemaining > 0) {
        dropRemaining -= 1;
        return;
      }
    } else if (base !== undefined && index <= base) {
      return;
    }
    dropRemaining = 0;
    if (index === lastIndex) countAtLast += 1;
    else {
      lastIndex = index;
      countAtLast = 1;
    }
    options.onEvent(message as unknown as ChangeMessage<T>);
  };

  /** Where the next connection starts; a resume drops the events of lastIndex it delivered. */
  const resumePoint = (): number | undefined => {
    if (lastIndex === undefined) return base;
    dropRemaining = countAtLast;
    return Math.max(0, lastIndex - 1);
  };

  /** True when the subscription is over (closed, or refused with a 4xx); throws to move on. */
  const connectOnce = async (exclude: Set<string>): Promise<boolean> => {
    const node = await transport.pick(exclude);
    const path = `/${encodeURIComponent(transport.app)}/${encodeURIComponent(table)}/${options.id === undefined ? '' : encodeURIComponent(String(options.id))}`;
    const fail = (error: unknown): never => {
      exclude.add(node);
      transport.failed(node);
      throw error;
    };
    try {
      if (transport.webSocket !== undefined) {
        const over = await streamWebSocket(transport, transport.webSocket, node, path, resumePoint(), controller.signal, deliver, () => exclude.clear());
        if (over) return true;
      }
      return await streamSse(transport, node, path, resumePoint(), controller.signal, deliver, options, (index) => {
        exclude.clear();
        if (index !== undefined) startsAfter(index);
      });
    } catch (error) {
      if (controller.signal.aborted) return true;
      return fail(error);
    }
  };

  void (async () => {
    const exclude = new Set<string>();
    for (let attempt = 0; !controller.signal.aborted; attempt++) {
      try {
        if (await connectOnce(exclude)) return;
        attempt = 0;
      } catch (error) {
        if (controller.signal.aborted) return;
        options.onError?.(error);
      }
      await sleep(Math.max(backoffMs(Math.min(attempt, 10)), 20), controller.signal);
    }
  })();

  return {
    close(): void {
      transport.closed.removeEventListener('abort', onClientClose);
      controller.abort();
    },
  };
}

function queryOf(since: number | undefined): string {
  return since === undefined ? '' : `?since=${since}`;
}

/**
 * One WebSocket connection: resolves true when the subscription was closed, false when the
 * socket never opened (the caller then asks the same node over SSE, whose answer has a status);
 * rejects when an open stream ends. `opened` is called once the stream is up.
 */
function streamWebSocket(transport: StreamSource, WebSocketClass: WebSocketClass, node: string, path: string, since: number | undefined, signal: AbortSignal, deliver: (text: string) => void, opened: () => void): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const protocols = transport.token === undefined ? ['lockstep'] : ['lockstep', `lockstep.bearer.${transport.token}`];
    const socket = new WebSocketClass(`${node.replace(/^http/, 'ws')}${path}${queryOf(since)}`, protocols, { headers: transport.headers() });
    let isOpen = false;
    let failure: unknown;
    const onAbort = (): void => socket.close(1000, 'closed');
    signal.addEventListener('abort', onAbort, { once: true });
    socket.addEventListener('open', () => {
      isOpen = true;
      opened();
    });
    socket.addEventListener('message', (event) => {
      if (failure !== undefined || signal.aborted) return;
      try {
        deliver(typeof event.data === 'string' ? event.data : String(event.data));
      } catch (error) {
        failure = error;
        socket.close(1000, 'bad message');
      }
    });
    // Every 'error' is followed by 'close', where the outcome is decided.
    socket.addEventListener('error', () => {});
    socket.addEventListener('close', (event) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) resolve(true);
      else if (!isOpen) resolve(false);
      else reject(failure ?? new Error(`the WebSocket closed: ${event.code} ${event.reason}`));
    });
  });
}

/** One SSE connection: true when the subscription is over (closed, or a 4xx reported to
 *  onError); throws when the node failed or the stream ended. */
async function streamSse<T>(transport: StreamSource, node: string, path: string, since: number | undefined, signal: AbortSignal, deliver: (text: string) => void, options: SubscribeOptions<T>, opened: (index: number | undefined) => void): Promise<boolean> {
  const response = await fetch(`${node}${path}${queryOf(since)}`, { headers: { ...transport.headers(), Accept: 'text/event-stream' }, signal });
  transport.observe(response.headers.get('x-lockstep-index'));
  if (!response.ok) {
    const error: LockstepError = errorOf(response.status, await response.text(), node);
    if (response.status >= 500) throw error;
    options.onError?.(error);
    return true; // 4xx: not retried
  }
  const at = Number(response.headers.get('x-lockstep-index') ?? Number.NaN);
  opened(Number.isSafeInteger(at) ? at : undefined);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    buffer += decoder.decode(chunk.value, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (data.length > 0) deliver(data.join('\n'));
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
      // `id:`, `event:` and `:` comments need nothing: the data carries the index.
    }
  }
  if (signal.aborted) return true;
  throw new Error('the event stream ended');
}
