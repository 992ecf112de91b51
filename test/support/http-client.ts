// A small HTTP client for integration tests: every request has a deadline, and the answer is read
// whole, so a test never hangs on a server that stops answering and never leaks a body stream.
import { request as httpRequest } from 'node:http';

/** Longest any single test request may take before it counts as a hang. */
export const requestTimeoutMsDefault = 10_000;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  text(): string;
  json<T = unknown>(): T;
  header(name: string): string | undefined;
}

export interface RawRequest {
  readonly method: string;
  /** Path and query, e.g. /shop/Item/1?x=y (sent exactly as given). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

/**
 * Sends one request over node:http, which (unlike fetch) allows any method token and sends
 * headers and paths as given, so malformed-but-parseable requests reach the server unchanged.
 * Uses a fresh connection per request (agent: false) so one failing request cannot poison others.
 */
export function rawRequest(base: string, init: RawRequest): Promise<HttpAnswer> {
  const url = new URL(base);
  const timeoutMs = init.timeoutMs ?? requestTimeoutMsDefault;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...init.headers };
    if (init.body !== undefined) headers['content-length'] = Buffer.byteLength(init.body);
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: init.method, path: init.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: () => body.toString('utf8'),
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
            header: (name: string) => {
              const value = res.headers[name.toLowerCase()];
              return Array.isArray(value) ? value.join(', ') : value;
            },
          });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`${init.method} ${init.path.slice(0, 120)} got no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(init.body);
  });
}

/** JSON request through fetch (keep-alive pool), with a deadline. */
export async function jsonRequest(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = requestTimeoutMsDefault,
): Promise<Response> {
  const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  return fetch(url, init);
}

/** Reads a counter or gauge from Prometheus text; sums every series whose labels include `labels`. */
export function metricValue(metricsText: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  let found = false;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? '';
    const matches = Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`));
    if (!matches) continue;
    found = true;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return found ? total : Number.NaN;
}
