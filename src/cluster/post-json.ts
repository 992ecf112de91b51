// One JSON POST between cluster processes (node to control plane, control plane to node), with a
// deadline, that resolves with the parsed answer or throws naming the status and the problem's
// detail.
import { request } from 'undici';

/** `authorization`: the Authorization header to send (the cluster's system token), if any. */
export async function postJson(url: string, body: unknown, timeoutMs: number, authorization?: string): Promise<Record<string, unknown>> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  if (response.statusCode >= 300) {
    let detail = text.slice(0, 500);
    try {
      detail = String((JSON.parse(text) as { detail?: unknown }).detail ?? detail);
    } catch {
      // not JSON: keep the text
    }
    throw new Error(`${url} answered ${response.statusCode}: ${detail}`);
  }
  return JSON.parse(text) as Record<string, unknown>;
}
