// Change subscriptions over Server-Sent Events read through fetch streaming. On disconnect the
// subscription reconnects (another node if there is one, with backoff) from where it stopped:
// several events share one index (one transaction), so it remembers the last index and how many
// of its events it delivered, resumes with since = lastIndex - 1 (the server sends events with
// index > since) and drops that many events of lastIndex again: no gaps, no duplicates.
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
}

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

  const connectOnce = async (exclude: Set<string>): Promise<boolean> => {
    const node = await transport.pick(exclude);
    let since: number | undefined;
    if (lastIndex !== undefined) {
      since = Math.max(0, lastIndex - 1);
      dropRemaining = lastIndex - 1 < 0 ? 0 : countAtLast;
    } else since = base;
    const path = `/${encodeURIComponent(transport.app)}/${encodeURIComponent(table)}/${options.id === undefined ? '' : encodeURIComponent(String(options.id))}`;
    const url = `${node}${path}${since === undefined ? '' : `?since=${since}`}`;
    let response: Response;
    try {
      response = await fetch(url, { headers: { ...transport.headers(), Accept: 'text/event-stream' }, signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted) return true;
      exclude.add(node);
      transport.failed(node);
      throw error;
    }
    transport.observe(response.headers.get('x-lockstep-index'));
    if (!response.ok) {
      const error: LockstepError = errorOf(response.status, await response.text(), node);
      if (response.status >= 500) {
        exclude.add(node);
        transport.failed(node);
        throw error;
      }
      options.onError?.(error);
      return true; // 4xx: not retried
    }
    if (base === undefined && lastIndex === undefined) {
      const at = Number(response.headers.get('x-lockstep-index'));
      if (Number.isSafeInteger(at)) base = at;
    }
    exclude.clear();
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let data: string[] = [];
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (controller.signal.aborted) return true;
        throw error;
      }
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
    if (controller.signal.aborted) return true;
    throw new Error('the event stream ended');
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
