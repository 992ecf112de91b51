// One REST request against an app: resolve the endpoint, check the method, negotiate content,
// parse the body and the conditions, hand the resource call to the request runner (app/), and
// answer.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppHost } from '../app/app-host.js';
import { AppCodeError } from '../app/app-code-error.js';
import { RequestRunner, consistencyLevels, type Attempt, type Consistency } from '../app/request-runner.js';
import { runInScope, type RequestInfo, type RestMethod, type Target } from '../app/resource.js';
import type { AppRuntime, Endpoint } from '../app/runtime.js';
import type { Transaction } from '../app/transaction.js';
import type { IdempotencyRecord, RecordedResponse, RecordId } from '../model/app-entries.js';
import type { LogIndex } from '../model/ids.js';
import { Problem } from '../model/problem.js';
import type { NodeMetrics } from '../observability/metrics.js';
import { parseQuery } from '../query/parse.js';
import type { Query } from '../query/types.js';
import type { Realtime } from '../realtime/server.js';
import { recordIdBytesMax } from '../state/key-limits.js';
import { readBody } from './body.js';
import { encodeCsv, requestCodec, responseCodec, type Codec } from './content.js';

const emptyQuery: Query = { sort: [], offset: 0 };

/** The query a request carries: a collection GET's or DELETE's; none on anything else. */
export function targetQuery(method: RestMethod, isCollection: boolean, search: string): Query {
  return isCollection && (method === 'get' || method === 'delete') && search !== '' ? parseQuery(search) : emptyQuery;
}

export interface RestContext {
  readonly metrics: NodeMetrics;
  readonly realtime: Realtime;
  /** The authenticated caller, recorded with its writes (absent: an open node). */
  readonly actor?: string;
}

export interface Outcome {
  readonly status: number;
  /** The response body, already encoded (before any write was proposed). */
  readonly payload?: Buffer | string;
  readonly headers: Record<string, string>;
}

export const methodsByHttp: Readonly<Record<string, RestMethod>> = { GET: 'get', HEAD: 'get', PUT: 'put', PATCH: 'patch', POST: 'post', DELETE: 'delete' };

function allowedMethods(endpoint: Endpoint, isCollection: boolean): string[] {
  if (endpoint.table !== undefined && endpoint.resourceClass.allowedMethods().length === 5) {
    return isCollection ? ['GET', 'HEAD', 'POST', 'DELETE'] : ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'];
  }
  const methods = endpoint.resourceClass.allowedMethods().map((m) => m.toUpperCase());
  if (endpoint.table !== undefined) {
    // App code narrowed a table: keep the path rules of tables.
    const pathMethods = isCollection ? ['GET', 'POST', 'DELETE'] : ['GET', 'PUT', 'PATCH', 'DELETE'];
    return withHead(methods.filter((m) => pathMethods.includes(m)));
  }
  return withHead(methods);
}

function withHead(methods: string[]): string[] {
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

export function parseId(raw: string, endpoint: Endpoint): RecordId {
  if (Buffer.byteLength(raw) > recordIdBytesMax) throw new Problem('invalid', { detail: `the id is longer than ${recordIdBytesMax} bytes` });
  const keyType = endpoint.table?.primaryKeyType;
  if (keyType === 'Int' || keyType === 'Long') {
    const id = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(id)) {
      throw new Problem('invalid', { detail: `'${raw}' is not a valid ${keyType} id`, errors: [{ field: endpoint.table?.primaryKey ?? 'id', message: `must be ${keyType}` }] });
    }
    return id;
  }
  return raw;
}

/** Parses an ETag header value list ("12", W/"12", 12) into log indexes; '*' is -1. */
function parseEtags(header: string | undefined): number[] | undefined {
  if (header === undefined) return undefined;
  const tags: number[] = [];
  for (const part of header.split(',')) {
    const tag = part.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
    if (tag === '*') tags.push(-1);
    else if (/^\d+$/.test(tag)) tags.push(Number(tag));
    else throw new Problem('invalid', { detail: `invalid entity tag '${part.trim()}': Lockstep ETags are log indexes` });
  }
  return tags;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export async function handleAppRequest(
  host: AppHost,
  req: IncomingMessage,
  res: ServerResponse,
  endpointName: string,
  rawId: string | undefined,
  search: string,
  context: RestContext,
): Promise<{ status: number; table: string }> {
  const runner = new RequestRunner(
    host,
    {
      proposed: (outcome, seconds) => context.metrics.proposeSeconds.observe({ app: host.name, outcome }, seconds),
      retried: (reason) => context.metrics.writeRetries.inc({ app: host.name, reason }),
    },
    undefined,
    context.actor,
  );
  const runtime = await runner.runtime();
  const endpoint = runtime.endpoints.get(endpointName);
  if (endpoint === undefined) throw new Problem('not-found', { detail: `app ${host.name} has no table or resource '${endpointName}'` });
  const isCollection = rawId === undefined;
  const allow = allowedMethods(endpoint, isCollection);
  const httpMethod = req.method ?? 'GET';
  if (httpMethod === 'OPTIONS') {
    res.writeHead(204, { Allow: ['OPTIONS', ...allow].join(', ') }).end();
    return { status: 204, table: endpoint.name };
  }
  const method = methodsByHttp[httpMethod];
  if (method === undefined || !allow.includes(httpMethod)) {
    throw new Problem('method-not-allowed', { detail: `${httpMethod} is not allowed on this path`, headers: { Allow: ['OPTIONS', ...allow].join(', ') } });
  }

  const consistencyHeader = headerValue(req, 'x-lockstep-consistency');
  if (consistencyHeader !== undefined && !(consistencyLevels as readonly string[]).includes(consistencyHeader)) {
    throw new Problem('invalid', { detail: `X-Lockstep-Consistency must be session, linearizable or stale, not '${consistencyHeader}'` });
  }
  const consistency = (consistencyHeader ?? 'session') as Consistency;
  const minIndexHeader = headerValue(req, 'x-lockstep-min-index');
  if (minIndexHeader !== undefined && consistency !== 'stale' && !/^\d{1,15}$/.test(minIndexHeader)) {
    throw new Problem('invalid', { detail: 'X-Lockstep-Min-Index must be a non-negative integer' });
  }
  const minIndex = minIndexHeader === undefined || consistency === 'stale' ? undefined : Number(minIndexHeader);
  const waitHeader = headerValue(req, 'x-lockstep-min-index-wait-ms');
  if (waitHeader !== undefined && !/^\d{1,5}$/.test(waitHeader)) throw new Problem('invalid', { detail: 'X-Lockstep-Min-Index-Wait-Ms must be a whole number of milliseconds' });
  const minIndexWait = waitHeader === undefined ? {} : { minIndexWaitMs: Number(waitHeader) };
  await runner.reachReadPoint({ consistency, ...(minIndex === undefined ? {} : { minIndex }), ...minIndexWait, readOnly: method === 'get' });
  const id = rawId === undefined ? undefined : parseId(rawId, endpoint);
  const accept = headerValue(req, 'accept');
  if (method === 'get' && endpoint.table !== undefined && accept !== undefined && accept.includes('text/event-stream')) {
    context.realtime.handleSse(req, res, {
      hub: host.hub,
      filter: id === undefined ? { table: endpoint.name } : { table: endpoint.name, id },
      headers: { 'X-Lockstep-Version': String(runtime.version), 'X-Lockstep-Index': String(host.appliedIndex()) },
    });
    return { status: 200, table: endpoint.name };
  }
  // Only a GET of a collection answers with a collection: CSV is offered for nothing else, so a
  // write asking for it is refused here, before it has any effect.
  const codec = responseCodec(accept, isCollection && method === 'get');
  if (codec === undefined) throw new Problem('not-acceptable', { detail: `cannot produce any of: ${accept ?? ''}` });

  const idempotencyKey = method === 'get' ? undefined : parseIdempotencyKey(headerValue(req, 'idempotency-key'));
  let body: unknown;
  let raw: Buffer | undefined;
  if (method === 'put' || method === 'patch' || method === 'post') {
    const bodyCodec = requestCodec(headerValue(req, 'content-type'));
    if (bodyCodec === undefined) throw new Problem('unsupported-media-type', { detail: `unsupported Content-Type '${headerValue(req, 'content-type') ?? ''}'` });
    raw = await readBody(req, runtime.config.rest.bodyBytesMax);
    body = bodyCodec.decode(raw);
  }
  const query = targetQuery(method, isCollection, search);
  const ifMatch = parseEtags(headerValue(req, 'if-match'));
  if (ifMatch !== undefined) await runner.reachReadPoint({ consistency, readOnly: false, comparesVersions: ifMatch });
  const ifNoneMatch = parseEtags(headerValue(req, 'if-none-match'));

  const request = { method: req.method ?? 'GET', headers: req.headers };
  const once =
    idempotencyKey === undefined
      ? undefined
      : {
          key: `${context.actor ?? ''}\n${idempotencyKey}`,
          fingerprint: requestFingerprint(httpMethod, req.url ?? '', codec.mediaType, raw, headerValue(req, 'if-match'), headerValue(req, 'if-none-match')),
          windowMs: runtime.config.rest.idempotencyWindowSeconds * 1000,
        };
  const outcome = await execute(runner, endpoint.name, method, { id, query, pathname: req.url ?? '' }, body, request, ifMatch, ifNoneMatch, codec, query.select, once);
  if (ifNoneMatch !== undefined && method === 'get' && outcome.status === 200) {
    const etag = outcome.headers.ETag;
    if (etag !== undefined && (ifNoneMatch.includes(-1) || ifNoneMatch.includes(Number(etag.slice(1, -1))))) {
      res.writeHead(304, outcome.headers).end();
      return { status: 304, table: endpoint.name };
    }
  }
  if (outcome.payload === undefined) {
    res.writeHead(outcome.status, outcome.headers).end();
  } else {
    outcome.headers['Content-Type'] = codec.mediaType;
    outcome.headers['Content-Length'] = String(typeof outcome.payload === 'string' ? Buffer.byteLength(outcome.payload) : outcome.payload.length);
    res.writeHead(outcome.status, outcome.headers);
    res.end(httpMethod === 'HEAD' ? undefined : outcome.payload);
  }
  return { status: outcome.status, table: endpoint.name };
}

/** The resource call, through the request runner: If-Match, the call, the answer's shape. */
export async function execute(
  runner: RequestRunner,
  endpointName: string,
  method: RestMethod,
  target: Target,
  body: unknown,
  request: RequestInfo,
  ifMatch: number[] | undefined,
  ifNoneMatch: number[] | undefined,
  codec: Codec,
  select: readonly string[] | undefined,
  once?: { readonly key: string; readonly fingerprint: string; readonly windowMs: number },
): Promise<Outcome> {
  const code = async ({ runtime, transaction }: Attempt): Promise<{ value: unknown; payload: Buffer | string | undefined }> => {
    const endpoint = runtime.endpoints.get(endpointName);
    if (endpoint === undefined) throw new Problem('not-found', { detail: `app ${runtime.app} has no table or resource '${endpointName}'` });
    if (endpoint.table !== undefined && target.id !== undefined && (ifMatch !== undefined || ifNoneMatch !== undefined)) {
      // The conditions read the record through the transaction, so the write set depends on
      // what they saw: if it changes before the entry applies, the request reruns and the
      // condition is judged again (compare-and-set).
      const current = transaction.readEnvelope(endpoint.table, target.id)?.i ?? 0;
      const where = `${endpointName}/${String(target.id)}`;
      if (ifMatch !== undefined) {
        // RFC 9110 13.1.1: '*' holds only if the record exists.
        const holds = ifMatch.includes(-1) ? current !== 0 : ifMatch.includes(current);
        if (!holds) {
          throw new Problem('precondition-failed', {
            detail: current === 0 ? `${where} does not exist` : `${where} is at version ${current}`,
            ...(current === 0 ? {} : { headers: { ETag: `"${current}"` } }),
          });
        }
      }
      if (ifNoneMatch !== undefined && method !== 'get') {
        // RFC 9110 13.1.2: on a write, '*' means create only; a listed version must not be current.
        const fails = ifNoneMatch.includes(-1) ? current !== 0 : ifNoneMatch.includes(current);
        if (fails) throw new Problem('precondition-failed', { detail: `${where} exists (version ${current})`, headers: { ETag: `"${current}"` } });
      }
    }
    const resource = new endpoint.resourceClass();
    let value: unknown;
    try {
      value = await runInScope(transaction, request, () => resource[method](target, body));
    } catch (error) {
      // A Problem is the app's (or the table API's) answer; anything else is a bug in app code.
      if (error instanceof Problem) throw error;
      throw new AppCodeError(runtime.app, runtime.version, endpointName, method, error);
    }
    // Encoded before the write set is proposed: a response that cannot be produced in the
    // negotiated format fails the request before it has any effect.
    return { value, payload: value === undefined ? undefined : encodeResponse(codec, value, select, `${method.toUpperCase()} ${endpointName}`) };
  };
  if (once !== undefined) {
    const outcome = await runner.runOnce({ ...once, response: ({ value, payload }, runtime) => recordedResponse(method, value, payload, runtime, endpointName, codec) }, code);
    if (outcome.replayed) return replayed(outcome.record, outcome.index, target);
    const { run } = outcome;
    return respond(method, run.value.value, run.value.payload, run.index, run.runtime.version, run.transaction, endpointName, target, run.writeIndex);
  }
  const run = await runner.run(code);
  if (run.writeIndex === undefined && method === 'get' && run.value.value === undefined) {
    throw new Problem('not-found', { detail: `${endpointName}/${String(target.id ?? '')} does not exist` });
  }
  return respond(method, run.value.value, run.value.payload, run.index, run.runtime.version, run.transaction, endpointName, target, run.writeIndex);
}

/** Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a structured-field string
 *  ("...") or a bare token, 1 to 255 visible ASCII characters. */
function parseIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  const key = /^"[^"]*"$/.test(text) ? text.slice(1, -1) : text;
  if (!/^[\x21-\x7e]{1,255}$/.test(key) || key.includes('"')) {
    throw new Problem('invalid', { detail: 'Idempotency-Key must be 1 to 255 visible ASCII characters, optionally in double quotes' });
  }
  return key;
}

/** What a keyed request asks, so a key reused for another request is recognised. */
function requestFingerprint(method: string, url: string, mediaType: string, body: Buffer | undefined, ifMatch: string | undefined, ifNoneMatch: string | undefined): string {
  const hash = createHash('sha256');
  for (const part of [method, url, mediaType, ifMatch ?? '', ifNoneMatch ?? '']) hash.update(part).update('\0');
  if (body !== undefined) hash.update(body);
  return hash.digest('base64url');
}

/** The answer a keyed write gets, kept with its key: respond()'s, without the entry's index. */
function recordedResponse(method: RestMethod, value: unknown, payload: Buffer | string | undefined, runtime: AppRuntime, endpointName: string, codec: Codec): RecordedResponse {
  const bytes = payload === undefined ? undefined : typeof payload === 'string' ? Buffer.from(payload) : payload;
  const withBody = bytes === undefined ? {} : { payload: bytes, mediaType: codec.mediaType };
  if (method === 'post') {
    const table = runtime.endpoints.get(endpointName)?.table;
    const id = table !== undefined ? (value as Record<string, unknown> | undefined)?.[table.primaryKey] : undefined;
    const location = id === undefined ? {} : { location: `/${runtime.app}/${endpointName}/${encodeURIComponent(String(id))}` };
    return { status: 201, version: runtime.version, ...withBody, ...location };
  }
  return { status: bytes === undefined ? 204 : 200, version: runtime.version, ...withBody };
}

/** The remembered answer of a keyed write, for a retry of it. */
function replayed(record: IdempotencyRecord, index: LogIndex, target: Target): Outcome {
  const { response } = record;
  const headers: Record<string, string> = { 'X-Lockstep-Version': String(response.version), 'X-Lockstep-Index': String(Math.max(index, record.index)), 'Idempotent-Replayed': 'true' };
  if (target.id !== undefined) headers.ETag = `"${record.index}"`;
  if (response.location !== undefined) headers.Location = response.location;
  return response.payload === undefined ? { status: response.status, headers } : { status: response.status, payload: Buffer.from(response.payload), headers };
}

function encodeResponse(codec: Codec, value: unknown, select: readonly string[] | undefined, what: string): Buffer | string {
  if (codec.mediaType === 'text/csv') {
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item))) {
      throw new Problem('not-acceptable', { detail: `${what} answers with a single value, which text/csv cannot represent; ask for JSON, CBOR or MessagePack` });
    }
    return encodeCsv(value as Record<string, unknown>[], select);
  }
  try {
    return codec.encode(value);
  } catch (error) {
    throw new Problem('internal', { detail: `${what} returned a value that cannot be encoded as ${codec.mediaType}: ${error instanceof Error ? error.message : String(error)}` });
  }
}

function respond(
  method: RestMethod,
  value: unknown,
  payload: Buffer | string | undefined,
  index: number,
  version: number,
  transaction: Transaction,
  endpointName: string,
  target: Target,
  writeIndex?: number,
): Outcome {
  const headers: Record<string, string> = { 'X-Lockstep-Version': String(version), 'X-Lockstep-Index': String(index) };
  const etag = writeIndex ?? transaction.newestReadIndex();
  if (etag > 0 && target.id !== undefined) headers.ETag = `"${etag}"`;
  if (method === 'post' && writeIndex !== undefined) {
    const created = value as Record<string, unknown> | undefined;
    const table = transaction.runtime.endpoints.get(endpointName)?.table;
    const id = table !== undefined ? created?.[table.primaryKey] : undefined;
    if (id !== undefined) headers.Location = `/${transaction.runtime.app}/${endpointName}/${encodeURIComponent(String(id))}`;
    return payload === undefined ? { status: 201, headers } : { status: 201, payload, headers };
  }
  if (payload === undefined) return { status: method === 'get' ? 404 : 204, headers };
  return { status: 200, payload, headers };
}
