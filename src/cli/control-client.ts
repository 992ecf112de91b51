// The control API as the command-line tools call it: one request at a time, an unreachable or
// leaderless control plane retried for a few seconds, refusals turned into an ExitError that
// carries the exit code the command ends with. clusterctl and `lockstep up` both use it.
import { request } from 'undici';

/** How long an unreachable or leaderless control plane is retried before exit 3. */
const unavailableRetryMs = 10_000;
const retryPauseMs = 300;
/** Deadline of one control API request; a deploy with a large bundle takes the longest. */
const requestTimeoutMs = 80_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An error that ends the command with `code` (clusterctl: 1 refused or failed, 2 usage,
 *  3 control plane unreachable). */
export class ExitError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export type Json = Record<string, unknown>;

export interface Answer {
  readonly status: number;
  readonly body: Json;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export class ControlClient {
  private readonly baseUrls: readonly string[];
  private current = 0;

  /** One or more members' URLs (any member answers; an unreachable one is passed over), and the
   *  token every request carries (none: an open, development cluster). */
  constructor(
    baseUrls: string | readonly string[],
    private readonly token?: string,
  ) {
    this.baseUrls = typeof baseUrls === 'string' ? [baseUrls] : baseUrls;
    if (this.baseUrls.length === 0) throw new Error('no control-plane URL');
  }

  /** The token requests carry, if any (clusterctl token attenuate narrows it). */
  get presentedToken(): string | undefined {
    return this.token;
  }

  get baseUrl(): string {
    return this.baseUrls[this.current % this.baseUrls.length] as string;
  }

  /** One request; an unreachable or unavailable control plane (no leader during a failover) is
   *  retried for a few seconds, on the next member when several are known, before it gives up
   *  with exit 3. Every request the tools make is
   *  safe to repeat (reads, drains, and deploys of the same files and spec). */
  async call(method: Method, path: string, body?: unknown): Promise<Answer> {
    const deadline = Date.now() + unavailableRetryMs;
    for (;;) {
      try {
        return await this.once(method, path, body);
      } catch (error) {
        if (!(error instanceof ExitError) || error.code !== 3 || Date.now() > deadline) throw error;
        this.current += 1; // the next member, if there are several
        await sleep(retryPauseMs);
      }
    }
  }

  private async once(method: Method, path: string, body?: unknown): Promise<Answer> {
    let response;
    try {
      response = await request(`${this.baseUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: requestTimeoutMs,
        bodyTimeout: requestTimeoutMs,
      });
    } catch (error) {
      throw new ExitError(3, `cannot reach the control plane at ${this.baseUrl}: ${error instanceof Error ? error.message : String(error)}\n(start one with 'lockstep control' or 'lockstep up', or point --control / LOCKSTEP_CONTROL at it)`);
    }
    const text = await response.body.text();
    let parsed: Json = {};
    try {
      parsed = JSON.parse(text) as Json;
    } catch {
      parsed = { detail: text };
    }
    if (response.statusCode === 503) throw new ExitError(3, `the control plane is unavailable: ${String(parsed.detail ?? text)}`);
    return { status: response.statusCode, body: parsed };
  }

  async expect(method: Method, path: string, body?: unknown): Promise<Json> {
    const answer = await this.call(method, path, body);
    if (answer.status >= 300) throw new ExitError(1, problemText(answer));
    return answer.body;
  }
}

export function problemText(answer: Answer): string {
  const body = answer.body;
  if (answer.status === 401) return `${String(body.title ?? 'Unauthorized')}: ${String(body.detail ?? '')}\n(give a token: LOCKSTEP_TOKEN=<token>, or --token-file <file>)`;
  const errors = Array.isArray(body.errors) ? (body.errors as { field: string; message: string }[]).map((e) => `\n  ${e.field}: ${e.message}`).join('') : '';
  return `${String(body.title ?? `error ${answer.status}`)}: ${String(body.detail ?? '')}${errors}`;
}
