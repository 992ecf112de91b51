// WebSocket and SSE subscribers for integration tests: connect to a real node, record every message
// in arrival order, and wait (bounded) for what a test expects.
import WebSocket from 'ws';
import { sleep } from './load.js';

/** Every wait for messages gives up after this long and fails with what it saw. */
export const streamWaitMsDefault = 10_000;

export interface StreamMessage {
  readonly type: string;
  readonly table?: string;
  readonly id?: string | number;
  readonly value?: unknown;
  readonly index: number;
  readonly version?: number;
  /** `reset` messages: the applied index the live stream continues after. */
  readonly current?: number;
  /** `error` messages. */
  readonly reason?: string;
}

export interface ChangeStream {
  readonly messages: StreamMessage[];
  /** Response headers of the 101 (WebSocket) or the 200 (SSE). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** SSE only: the `id:` field of each event, aligned with `messages` ('' when absent). */
  readonly eventIds: string[];
  /** Resolves once at least `count` messages arrived; throws with what arrived after `timeoutMs`. */
  waitForCount(count: number, timeoutMs?: number): Promise<StreamMessage[]>;
  close(): Promise<void>;
}

async function waitForCount(messages: StreamMessage[], count: number, timeoutMs: number, what: string): Promise<StreamMessage[]> {
  const deadline = Date.now() + timeoutMs;
  while (messages.length < count) {
    if (Date.now() > deadline) throw new Error(`${what}: ${messages.length} of ${count} messages after ${timeoutMs} ms: ${JSON.stringify(messages)}`);
    await sleep(10);
  }
  return messages.slice();
}

/** Opens a WebSocket subscription; resolves once the upgrade completed. */
export function openWebSocket(url: string): Promise<ChangeStream> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const messages: StreamMessage[] = [];
    let headers: Record<string, string | string[] | undefined> = {};
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`WebSocket ${url} did not open within ${streamWaitMsDefault} ms`));
    }, streamWaitMsDefault);
    socket.on('upgrade', (response) => {
      headers = response.headers;
    });
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as StreamMessage));
    socket.on('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${url} answered ${response.statusCode}`));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('open', () => {
      clearTimeout(timer);
      resolve({
        messages,
        headers,
        eventIds: [],
        waitForCount: (count, timeoutMs = streamWaitMsDefault) => waitForCount(messages, count, timeoutMs, `WebSocket ${url}`),
        close: () =>
          new Promise<void>((resolveClose) => {
            if (socket.readyState === WebSocket.CLOSED) return resolveClose();
            const closeTimer = setTimeout(() => socket.terminate(), 2_000);
            socket.once('close', () => {
              clearTimeout(closeTimer);
              resolveClose();
            });
            socket.close();
          }),
      });
    });
  });
}

/** Opens an SSE subscription (GET with Accept: text/event-stream); resolves once headers arrived. */
export async function openEventStream(url: string, headers: Record<string, string> = {}): Promise<ChangeStream> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), streamWaitMsDefault);
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  clearTimeout(timer);
  if (response.status !== 200 || response.body === null) {
    abort.abort();
    throw new Error(`SSE ${url} answered ${response.status}`);
  }
  const messages: StreamMessage[] = [];
  const eventIds: string[] = [];
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const reading = (async () => {
    let pending = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value;
      let end: number;
      while ((end = pending.indexOf('\n\n')) !== -1) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        let data: string | undefined;
        let id = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('data: ')) data = line.slice(6);
          else if (line.startsWith('id: ')) id = line.slice(4);
        }
        if (data === undefined) continue; // heartbeat comments
        messages.push(JSON.parse(data) as StreamMessage);
        eventIds.push(id);
      }
    }
  })().catch(() => undefined); // aborted by close()
  return {
    messages,
    eventIds,
    headers: Object.fromEntries(response.headers.entries()),
    waitForCount: (count, timeoutMs = streamWaitMsDefault) => waitForCount(messages, count, timeoutMs, `SSE ${url}`),
    close: async () => {
      abort.abort();
      await reading;
    },
  };
}
