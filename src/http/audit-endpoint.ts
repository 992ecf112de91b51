// GET /_audit/<app>[?table=&actor=&since=&limit=] and GET /_audit/<app>/verify[?seq=&hash=]: the
// write audit trail of an app's tables declared @table(audit: true), as this replica holds it
// (every replica applies the same entries, so each holds the same trail), and a recomputation of
// its hash chain. Reading it needs the `audit` operation; nothing can write it but apply.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppHost } from '../app/app-host.js';
import { Problem } from '../model/problem.js';
import { verifyWriteAudit, writeAuditHead, writeAuditRecords } from '../state/write-audit.js';

export const writeAuditListMax = 10_000;
const writeAuditListDefault = 200;

function json(res: ServerResponse, body: unknown): number {
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  return 200;
}

export function answerWriteAudit(apps: ReadonlyMap<string, AppHost>, req: IncomingMessage, res: ServerResponse, url: string): number {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new Problem('method-not-allowed', { detail: 'the audit trail is read only: nothing writes it but apply', headers: { Allow: 'GET, HEAD' } });
  const parsed = new URL(url, 'http://node');
  const [, , name = '', sub] = parsed.pathname.split('/').map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new Problem('invalid', { detail: `malformed percent-encoding in '${segment.slice(0, 64)}'` });
    }
  });
  const host = apps.get(name);
  if (host === undefined) throw new Problem('not-found', { detail: `this node hosts no app '${name}'` });
  const query = parsed.searchParams;
  if (sub === 'verify') {
    const seq = query.get('seq');
    const hash = query.get('hash');
    if ((seq === null) !== (hash === null) || (seq !== null && !/^\d{1,12}$/.test(seq)) || (hash !== null && !/^[0-9a-f]{64}$/.test(hash))) {
      throw new Problem('invalid', { errors: [{ field: 'seq', message: 'a checkpoint is seq (a record number) and hash (64 hex digits), both or neither' }] });
    }
    return json(res, { app: name, ...verifyWriteAudit(host.store, seq === null || hash === null ? undefined : { seq: Number(seq), hash }) });
  }
  if (sub !== undefined) throw new Problem('not-found', { detail: `no audit endpoint ${parsed.pathname} (/_audit/<app>, /_audit/<app>/verify)` });
  for (const key of query.keys()) if (!['table', 'actor', 'since', 'limit'].includes(key)) throw new Problem('invalid', { errors: [{ field: key, message: 'unknown parameter (table, actor, since, limit)' }] });
  const limitText = query.get('limit');
  const limit = limitText === null ? writeAuditListDefault : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > writeAuditListMax) throw new Problem('invalid', { errors: [{ field: 'limit', message: `must be an integer from 1 to ${writeAuditListMax}` }] });
  const since = query.get('since');
  const sinceMs = since === null ? undefined : /^\d{1,15}$/.test(since) ? Number(since) : Date.parse(since);
  if (sinceMs !== undefined && Number.isNaN(sinceMs)) throw new Problem('invalid', { errors: [{ field: 'since', message: 'must be an ISO 8601 time or milliseconds since the epoch' }] });
  const table = query.get('table');
  const actor = query.get('actor');
  return json(res, {
    app: name,
    head: writeAuditHead(host.store),
    records: writeAuditRecords(host.store, { limit, ...(table === null ? {} : { table }), ...(actor === null ? {} : { actor }), ...(sinceMs === undefined ? {} : { sinceMs }) }),
  });
}
