// The audit trail as the control API serves it: records filtered by app, actor and time, the
// chain's head (a checkpoint to keep outside the cluster), and a verification of the stored
// chain against its head and, optionally, a checkpoint.
import { Problem } from '../model/problem.js';
import { hashOf, verifyChain, type AuditRecord, type ChainHead, type VerifyResult } from './audit.js';
import { checkpointSignatureHolds, type SignedCheckpoint } from './audit-key.js';
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

/** `visible`: which records the caller may see (absent: every one, for a caller with `audit`). */
export function auditListing(machine: ControlMachine, query: URLSearchParams, visible?: (record: AuditRecord) => boolean): AuditListing {
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
    if (visible !== undefined && !visible(record)) continue;
    if (app !== null && record.target !== `app:${app}`) continue;
    if (actor !== null && record.actor !== actor) continue;
    if (sinceMs !== undefined && record.at < sinceMs) continue;
    records.push({ ...record, hash: hashOf(bytes) });
    if (records.length > limit) records.shift();
  }
  return { head: machine.durableAuditHead(), records };
}

/** A signed checkpoint given as ?seq=&hash=&at=&signer=&publicKey=&signature= (all or none),
 *  as clusterctl audit checkpoint writes it. */
export function checkpointOf(query: URLSearchParams): SignedCheckpoint | undefined {
  const fields = ['seq', 'hash', 'at', 'signer', 'publicKey', 'signature'] as const;
  const given = fields.filter((field) => query.get(field) !== null);
  if (given.length === 0) return undefined;
  const value = (field: (typeof fields)[number]): string => query.get(field) ?? '';
  const invalid = (message: string): never => {
    throw new Problem('invalid', { errors: [{ field: 'checkpoint', message: `${message}: give the checkpoint clusterctl audit checkpoint wrote` }] });
  };
  if (given.length !== fields.length) invalid(`a checkpoint has ${fields.join(', ')}; missing ${fields.filter((field) => !given.includes(field)).join(', ')}`);
  if (!/^\d{1,12}$/.test(value('seq'))) invalid('seq must be a record number');
  if (!/^[0-9a-f]{64}$/.test(value('hash'))) invalid('hash must be 64 hex digits');
  if (Number.isNaN(Date.parse(value('at')))) invalid('at must be an ISO time');
  if (!/^[A-Za-z0-9+/=]{1,200}$/.test(value('publicKey')) || !/^[A-Za-z0-9+/=]{1,200}$/.test(value('signature'))) invalid('publicKey and signature must be base64');
  return { seq: Number(value('seq')), hash: value('hash'), at: value('at'), signer: value('signer'), publicKey: value('publicKey'), signature: value('signature') };
}

export interface AuditVerification extends VerifyResult {
  /** Why the checkpoint itself cannot be trusted (its signature), when it cannot. */
  readonly checkpointProblem?: string;
}

/** Verifies the stored chain; a checkpoint must first carry a valid signature by a key the
 *  control log recorded for its signer. */
export function auditVerify(machine: ControlMachine, checkpoint: SignedCheckpoint | undefined): AuditVerification {
  if (checkpoint !== undefined) {
    const recorded = machine.state.memberKeys.get(checkpoint.signer);
    const problem =
      recorded === undefined
        ? `the checkpoint names signer ${checkpoint.signer}, whose key the control log does not hold`
        : recorded !== checkpoint.publicKey
          ? `the checkpoint's key is not the one the control log recorded for ${checkpoint.signer}`
          : !checkpointSignatureHolds(checkpoint, recorded)
            ? "the checkpoint's signature does not hold: it was altered after it was signed"
            : undefined;
    if (problem !== undefined) return { ok: false, records: 0, head: machine.durableAuditHead(), checkpointProblem: problem };
  }
  const sealHolds = (seal: NonNullable<AuditRecord['seal']>): boolean => {
    const key = machine.state.memberKeys.get(seal.signer);
    return key !== undefined && checkpointSignatureHolds({ ...seal, publicKey: key }, key);
  };
  return verifyChain(machine.auditRecords(), machine.durableAuditHead(), checkpoint, sealHolds);
}
