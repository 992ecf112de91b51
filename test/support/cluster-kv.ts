// Clients of a cluster that record a key-value history for the linearizability checker.
//
// REST mapped onto the KV register model (src/testing/linearizability/kv-model.ts):
//   read  = GET /shop/Item/<key> with X-Lockstep-Consistency: linearizable; 200 -> its name, 404 -> null
//   write = PUT /shop/Item/<key> {"name": <unique value>}
//   cas   = PUT with If-Match: "<etag>" where the client saw value v at that ETag (its last read or
//           its own acknowledged write). Every value is written once, so "the record is at that
//           version" is the same as "the register holds v": 204 -> cas ok, 412 -> cas failed.
// Outcomes are only definite when the server says so: 204/412 (and 409, which means every OCC
// attempt was rejected, so nothing was applied) are definite; a 503, a timeout or a broken
// connection is UNKNOWN - the write may still commit later.
import { UNKNOWN, checkKv, type KvOperation } from '../../src/testing/linearizability/index.js';
import { appName, sleep, type ClusterNode } from './cluster.js';

export interface KvLoadOptions {
  /** Client i talks to nodes[i % nodes.length] (it follows that node through restarts). */
  readonly nodes: readonly ClusterNode[];
  readonly clients: number;
  readonly keys: readonly string[];
  /** Per request; past it the outcome is unknown. Longer than the nodes' request timeout. */
  readonly requestTimeoutMs: number;
  /** Hard upper bound on the load, whatever `stop` does. */
  readonly deadlineMs: number;
  /** Pause after an unknown outcome, so an outage adds few unknown operations (they make the
   *  checker's search wider: each may take effect at any later point). */
  readonly backoffMs?: number;
  /** Only for showing that the checker notices: stale reads are not linearizable. */
  readonly readConsistency?: 'linearizable' | 'stale';
}

export interface KvCounts {
  total: number;
  unknown: number;
  /** Definite answers: acknowledged writes, cas ok/failed, reads with a value. */
  definite: number;
  acknowledgedWrites: number;
  /** 409: the server gave up after conflicting retries; the op did not happen and is left out. */
  abandoned: number;
  /** Writes certainly not applied (connection refused, 503 not-applied); left out. */
  notApplied: number;
}

export interface KvLoad {
  stop(): void;
  readonly done: Promise<void>;
  readonly history: KvOperation[];
  readonly counts: KvCounts;
}

/** What a client last knew about a key: its value at a version. */
interface Seen {
  readonly value: string | null;
  readonly etag: string | undefined;
}

type Outcome =
  | { kind: 'answer'; status: number; etag: string | undefined; name: string | null }
  /** Certainly not applied: the connection was refused (nothing reached a server), or the node
   *  answered 503 with X-Lockstep-Outcome: not-applied (refused before its log). Such a write
   *  is left out of the history; if the claim were false, a later read of its value would show
   *  a violation. */
  | { kind: 'notApplied'; reason: string }
  | { kind: 'unknown'; reason: string };

async function request(node: ClusterNode, method: 'GET' | 'PUT', key: string, headers: Record<string, string>, body: unknown, timeoutMs: number): Promise<Outcome> {
  try {
    const response = await fetch(`${node.base}/${appName}/Item/${encodeURIComponent(key)}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (response.status === 503 && response.headers.get('x-lockstep-outcome') === 'not-applied') return { kind: 'notApplied', reason: text };
    let name: string | null = null;
    if (response.status === 200) name = (JSON.parse(text) as { name?: string }).name ?? null;
    return { kind: 'answer', status: response.status, etag: response.headers.get('etag') ?? undefined, name };
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') return { kind: 'notApplied', reason: 'connection refused' };
    return { kind: 'unknown', reason: error instanceof Error ? error.message : String(error) };
  }
}

/** One linearizable read through `node`: the value, null for 404, or undefined if no definite answer. */
export async function linearizableRead(node: ClusterNode, key: string, timeoutMs: number): Promise<{ value: string | null; etag: string | undefined } | undefined> {
  const outcome = await request(node, 'GET', key, { 'x-lockstep-consistency': 'linearizable' }, undefined, timeoutMs);
  if (outcome.kind !== 'answer') return undefined;
  if (outcome.status === 200) return { value: outcome.name, etag: outcome.etag };
  if (outcome.status === 404) return { value: null, etag: undefined };
  return undefined;
}

export function startKvLoad(options: KvLoadOptions): KvLoad {
  const history: KvOperation[] = [];
  const counts: KvCounts = { total: 0, unknown: 0, definite: 0, acknowledgedWrites: 0, abandoned: 0, notApplied: 0 };
  const deadline = Date.now() + options.deadlineMs;
  const backoffMs = options.backoffMs ?? 200;
  let stopped = false;
  const unexpected: string[] = [];

  const record = (operation: KvOperation): void => {
    history.push(operation);
    counts.total++;
    if (operation.output === UNKNOWN) counts.unknown++;
    else counts.definite++;
  };

  const client = async (clientId: number): Promise<void> => {
    const node = options.nodes[clientId % options.nodes.length] as ClusterNode;
    const seen = new Map<string, Seen>();
    for (let sequence = 0; !stopped && Date.now() < deadline; sequence++) {
      const key = options.keys[Math.floor(Math.random() * options.keys.length)] as string;
      const known = seen.get(key);
      const roll = Math.random();
      const value = `c${clientId}-${sequence}`;
      const callTime = performance.now();
      let unknown = false;
      if (roll < 0.4 || (roll >= 0.7 && (known === undefined || known.etag === undefined))) {
        const consistency = options.readConsistency ?? 'linearizable';
        const outcome = await request(node, 'GET', key, { 'x-lockstep-consistency': consistency }, undefined, options.requestTimeoutMs);
        const returnTime = performance.now();
        if (outcome.kind === 'answer' && (outcome.status === 200 || outcome.status === 404)) {
          const read = outcome.status === 200 ? outcome.name : null;
          record({ clientId, input: { type: 'read', key }, callTime, returnTime, output: { type: 'read', value: read } });
          seen.set(key, { value: read, etag: outcome.etag });
        } else {
          unknown = true;
          if (outcome.kind === 'answer' && outcome.status !== 503) unexpected.push(`GET ${key} -> ${outcome.status}`);
        }
      } else if (roll < 0.7) {
        const outcome = await request(node, 'PUT', key, {}, { name: value }, options.requestTimeoutMs);
        const returnTime = performance.now();
        if (outcome.kind === 'answer' && outcome.status === 204) {
          record({ clientId, input: { type: 'write', key, value }, callTime, returnTime, output: { type: 'write' } });
          counts.acknowledgedWrites++;
          seen.set(key, { value, etag: outcome.etag });
        } else if (outcome.kind === 'answer' && outcome.status === 409) {
          counts.abandoned++;
        } else if (outcome.kind === 'notApplied') {
          counts.notApplied++;
          unknown = true; // back off as after any failure
        } else {
          record({ clientId, input: { type: 'write', key, value }, callTime, returnTime, output: UNKNOWN });
          seen.delete(key);
          unknown = true;
          if (outcome.kind === 'answer' && outcome.status !== 503) unexpected.push(`PUT ${key} -> ${outcome.status}`);
        }
      } else {
        const expected = known as Seen;
        const etag = expected.etag as string;
        // Half the conditional writes also carry the session index (the ETag is the index of the
        // write we saw), half rely on the node alone to not judge If-Match on a stale state.
        const headers: Record<string, string> = { 'if-match': etag };
        if (Math.random() < 0.5) headers['x-lockstep-min-index'] = etag.replace(/"/g, '');
        const outcome = await request(node, 'PUT', key, headers, { name: value }, options.requestTimeoutMs);
        const returnTime = performance.now();
        const input = { type: 'cas', key, expected: expected.value, value } as const;
        if (outcome.kind === 'answer' && (outcome.status === 204 || outcome.status === 412)) {
          const ok = outcome.status === 204;
          record({ clientId, input, callTime, returnTime, output: { type: 'cas', ok } });
          if (ok) {
            counts.acknowledgedWrites++;
            seen.set(key, { value, etag: outcome.etag });
          } else {
            seen.delete(key);
          }
        } else if (outcome.kind === 'answer' && outcome.status === 409) {
          counts.abandoned++;
        } else if (outcome.kind === 'notApplied') {
          counts.notApplied++;
          seen.delete(key);
          unknown = true;
        } else {
          record({ clientId, input, callTime, returnTime, output: UNKNOWN });
          seen.delete(key);
          unknown = true;
          if (outcome.kind === 'answer' && outcome.status !== 503) unexpected.push(`PUT If-Match ${key} -> ${outcome.status}`);
        }
      }
      if (unknown) await sleep(backoffMs);
    }
  };

  const done = Promise.all(Array.from({ length: options.clients }, (_unused, i) => client(i))).then(() => {
    if (unexpected.length > 0) throw new Error(`unexpected statuses: ${unexpected.slice(0, 10).join('; ')} (${unexpected.length} in all)`);
  });
  return {
    stop: () => {
      stopped = true;
    },
    done,
    history,
    counts,
  };
}

/**
 * Appends a definite linearizable read of every key (through any node that answers) to the
 * history: with them in the history, an acknowledged write that was lost makes the checker fail,
 * since the final value must be the last write in some legal order.
 */
export async function appendFinalReads(history: KvOperation[], nodes: readonly ClusterNode[], keys: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const key of keys) {
    for (let attempt = 0; ; attempt++) {
      const node = nodes[attempt % nodes.length] as ClusterNode;
      const callTime = performance.now();
      const read = await linearizableRead(node, key, 5_000);
      const returnTime = performance.now();
      if (read !== undefined) {
        history.push({ clientId: 'final', input: { type: 'read', key }, callTime, returnTime, output: { type: 'read', value: read.value } });
        break;
      }
      if (Date.now() > deadline) throw new Error(`no linearizable read of ${key} succeeded within ${timeoutMs} ms`);
      await sleep(200);
    }
  }
}

export interface Verdict {
  readonly ok: boolean;
  readonly verdict: string;
  readonly operations: number;
  readonly reason?: string;
}

/** Runs the checker; `reason` names the failing key and operation. */
export function checkHistory(history: readonly KvOperation[], timeoutMs: number): Verdict {
  const result = checkKv(history, { timeoutMs });
  if (result.ok) return { ok: true, verdict: result.verdict, operations: history.length };
  return { ok: false, verdict: result.verdict, operations: history.length, reason: result.reason };
}
