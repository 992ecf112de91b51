// What a subscription request asks for beyond its path: the resume point. `?since=<index>` on
// both transports; for SSE the `Last-Event-ID` header a reconnecting EventSource sends wins,
// because it is newer than the `since` still sitting in the URL the browser reuses.

import type { IncomingMessage } from 'node:http';
import { Problem } from '../model/problem.js';

const indexPattern = /^(0|[1-9][0-9]*)$/;

export function resumeIndexOf(req: IncomingMessage, honourLastEventId: boolean): number | undefined {
  if (honourLastEventId) {
    const header = req.headers['last-event-id'];
    const lastEventId = Array.isArray(header) ? header[0] : header;
    if (lastEventId !== undefined && lastEventId.trim() !== '') return parseIndex(lastEventId.trim(), 'Last-Event-ID');
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  const values = url.searchParams.getAll('since');
  if (values.length === 0) return undefined;
  if (values.length > 1) throw invalid('since', 'given more than once');
  return parseIndex(values[0]!, 'since');
}

function parseIndex(text: string, field: string): number {
  const value = indexPattern.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) throw invalid(field, `must be a non-negative integer log index, got "${text.slice(0, 40)}"`);
  return value;
}

function invalid(field: string, message: string): Problem {
  return new Problem('invalid', { type: 'validation', detail: `${field} ${message}`, errors: [{ field, message }] });
}
