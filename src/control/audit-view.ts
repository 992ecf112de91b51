// The audit trail as the control API serves it: records filtered by app, actor and time, the
// chain's head (a checkpoint to keep outside the cluster), and a verification of the stored
// chain against its head and, optionally, a checkpoint.
import { Problem } from '../model/problem.js';
import { hashOf, verifyChain, type AuditRecord, type ChainHead, type VerifyResult } from './audit.js';
import type { ControlMachine } from './machine.js';

/** Records one listing returns at most (the newest matching ones). */
export const auditListMax = 10_000;
const auditListDefault = 200;

export interface AuditListing {
  readonly head: ChainHead;
  readonly records: readonly (AuditRecord & { readonly hash: string })[];
}

function parseSince(text: string): number {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) throw new Problem('invalid', { errors: [{ field: 'since', message: 'must be an ISO 8601 time or milliseconds since the epoch' }] });
  return parsed;
}

export function auditListing(machine: ControlMachine, query: URLSearchParams): AuditListing {
  const app = query.get('app');
  const actor = query.get('actor');
  const since = query.get('since');
  const limitText = query.get('limit');
  const limit = limitText === null ? auditListDefault : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > auditListMax) throw new Problem('invalid', { errors: [{ field: 'limit', message: `must be an integer from 1 to ${auditListMax}` }] });
  const sinceMs = since === null ? undefined : parseSince(since);
  for (const key of query.keys()) {
    if (!['app', 'actor', 'since', 'limit'].includes(key)) throw new Problem('invalid', { errors: [{ field: key, message: 'unknown parameter (app, actor, since, limit)' }] });
  }
  const records: (AuditRecord & { hash: string })[] = [];
  for (const { bytes } of machine.auditRecords()) {
    let record: AuditRecord;
    try {
      record = JSON.parse(bytes.toString('utf8')) as AuditRecord;
    } catch {
      continue; // unreadable: `audit verify` names it
    }
    if (app !== null && record.target !== `app:${app}`) continue;
    if (actor !== null && record.actor !== actor) continue;
    if (sinceMs !== undefined && record.at < sinceMs) continue;
    records.push({ ...record, hash: hashOf(bytes) });
    if (records.length > limit) records.shift();
  }
  return { head: machine.durableAuditHead(), records };
}

/** A checkpoint given as ?seq=&hash= (both or neither). */
export function checkpointOf(query: URLSearchParams): ChainHead | undefined {
  const seq = query.get('seq');
  const hash = query.get('hash');
  if (seq === null && hash === null) return undefined;
  if (seq === null || !/^\d{1,12}$/.test(seq) || hash === null || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new Problem('invalid', { errors: [{ field: 'seq', message: 'a checkpoint is seq (a record number) and hash (64 hex digits), as clusterctl audit checkpoint writes it' }] });
  }
  return { seq: Number(seq), hash };
}

export function auditVerify(machine: ControlMachine, checkpoint: ChainHead | undefined): VerifyResult {
  return verifyChain(machine.auditRecords(), machine.durableAuditHead(), checkpoint);
}
