// The audit trail of the control plane: one record per applied control entry - who asked, what,
// on which target, and whether apply accepted it - written by `apply` in the same transaction as
// the change itself, so an action and its record commit together or not at all. Records are
// hash-chained: each holds the sha256 of the one before, and its own hash is the sha256 of its
// stored bytes (canonical JSON), so any edit, deletion, reordering or truncation of the stored
// trail is found by recomputing the chain (and truncation of the tail by comparing with a
// checkpoint kept outside the cluster).
import { createHash } from 'node:crypto';
import type { LogIndex } from '../model/ids.js';
import type { ControlCommand, ControlEntry } from './commands.js';
import type { ApplyResult } from './state.js';

/** The hash the first record points back to. */
export const chainOrigin = '0'.repeat(64);

export interface AuditRecord {
  /** 1, 2, 3 ... with no gaps. */
  readonly seq: number;
  /** The control log index of the entry. */
  readonly index: LogIndex;
  /** When the entry was proposed (the proposer's clock, ms since the epoch). */
  readonly at: number;
  readonly actor: string;
  readonly op: ControlCommand['op'];
  /** `app:<name>`, `node:<id>` or `member:<id>`. */
  readonly target: string;
  /** What the command asked for, in a few words (never a bundle's contents). */
  readonly detail: string;
  /** 'denied': the caller may not do this (refused by apply, or by an API before proposing). */
  readonly outcome: 'ok' | 'refused' | 'denied';
  /** The token the caller presented (its id; never a secret). */
  readonly token?: string;
  readonly reason?: string;
  /** The previous record's hash (chainOrigin for the first). */
  readonly prev: string;
  /** An audit.seal record: the signed head it seals. */
  readonly seal?: { readonly seq: number; readonly hash: string; readonly at: string; readonly signer: string; readonly signature: string };
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export const emptyHead: ChainHead = { seq: 0, hash: chainOrigin };

/** What a record says of its command: its target and a short description. */
function describe(command: ControlCommand): { target: string; detail: string } {
  switch (command.op) {
    case 'member.announce':
      return { target: `member:${command.id}`, detail: `${command.httpUrl}${command.auditKey === undefined ? '' : `, audit key ${command.auditKey}`}` };
    case 'node.register':
      return { target: `node:${command.node.id}`, detail: `region ${command.node.region}${command.node.zone === undefined ? '' : `, zone ${command.node.zone}`}, ${command.node.httpUrl}, ${command.node.grpcAddress}` };
    case 'node.liveness':
      return { target: `node:${command.id}`, detail: command.liveness };
    case 'node.drain':
      return { target: `node:${command.id}`, detail: command.drain };
    case 'app.deploy':
      return {
        target: `app:${command.name}`,
        detail: `regions ${command.spec.regions.join(',')}, ${command.spec.replicas} replicas, bundle ${command.bundle.hash.slice(0, 12)}${command.allowBreaking ? ', allow breaking' : ''}${command.validateForMs ? `, validate for ${command.validateForMs} ms` : ''}`,
      };
    case 'app.founded':
    case 'app.abortRollout':
      return { target: `app:${command.name}`, detail: '' };
    case 'app.activated':
      return { target: `app:${command.name}`, detail: `version ${command.version} (bundle ${command.hash.slice(0, 12)})${command.switchIndex === undefined ? '' : ` at app index ${command.switchIndex}`}` };
    case 'app.deployFailed':
      return { target: `app:${command.name}`, detail: `version ${command.version}: ${command.reason}` };
    case 'app.rolloutStaged':
      return { target: `app:${command.name}`, detail: `version ${command.version} staged as ${command.appVersion}` };
    case 'app.validated':
      return { target: `app:${command.name}`, detail: `version ${command.version}: ${command.detail}` };
    case 'app.validationFailed':
      return { target: `app:${command.name}`, detail: `version ${command.version}: ${command.reason}` };
    case 'app.rollback':
      return { target: `app:${command.name}`, detail: `to version ${command.to}` };
    case 'app.step':
      return { target: `app:${command.name}`, detail: `${command.outcome} ${command.detail}` };
    case 'audit.seal':
      return { target: 'audit', detail: `record ${command.seq} (${command.hash.slice(0, 12)}) signed by ${command.signer}` };
    case 'auth.bootstrap':
      return { target: 'auth', detail: `admin token ${String(command.admin?.id)}, system token ${String(command.system?.id)}` };
    case 'identity.create':
      return { target: `identity:${command.id}`, detail: `${command.kind}${command.passwordHash === undefined ? '' : ', with a password'}` };
    case 'identity.update':
      return { target: `identity:${command.id}`, detail: [command.disabled === undefined ? '' : command.disabled ? 'disabled' : 'enabled', command.passwordHash === undefined ? '' : 'password set'].filter((part) => part !== '').join(', ') };
    case 'grant.add':
      return { target: `identity:${command.identity}`, detail: `role ${command.role} on apps ${names(command.apps)}, regions ${names(command.regions)}` };
    case 'grant.remove':
      return { target: `identity:${command.identity}`, detail: `role ${command.role}` };
    case 'role.define':
      return { target: `role:${command.name}`, detail: JSON.stringify(command.permissions).slice(0, 300) };
    case 'role.remove':
      return { target: `role:${command.name}`, detail: '' };
    case 'token.issue':
      return { target: `identity:${command.identity}`, detail: `token ${String(command.token?.id)}${Object.keys(command.scope ?? {}).length === 0 ? '' : `, scope ${JSON.stringify(command.scope)}`}` };
    case 'token.revoke':
      return { target: `token:${command.id}`, detail: '' };
    case 'audit.denied':
      return { target: 'audit', detail: `${command.attempts.length} denied attempts` };
  }
}

function names(set: '*' | readonly string[]): string {
  return set === '*' ? '*' : set.join(',');
}

/** The records of an applied entry, chained from `head`, with their stored bytes: one, or one
 *  per attempt of an audit.denied entry. */
export function auditRecordsOf(index: LogIndex, entry: ControlEntry, result: ApplyResult, head: ChainHead): { record: AuditRecord; bytes: Buffer; hash: string }[] {
  if (entry.command.op !== 'audit.denied' || !Array.isArray(entry.command.attempts) || entry.command.attempts.length === 0 || !result.ok) return [auditRecordOf(index, entry, result, head)];
  const out: { record: AuditRecord; bytes: Buffer; hash: string }[] = [];
  let previous = head;
  for (const attempt of entry.command.attempts) {
    const record: AuditRecord = {
      seq: previous.seq + 1,
      index,
      at: Number(attempt.at),
      actor: String(attempt.actor),
      op: 'audit.denied',
      target: String(attempt.surface),
      detail: `${String(attempt.request)} from ${String(attempt.source)}`,
      outcome: 'denied',
      reason: String(attempt.reason),
      ...(attempt.token === undefined ? {} : { token: String(attempt.token) }),
      prev: previous.hash,
    };
    const stored = storedFormOf(record);
    out.push(stored);
    previous = { seq: record.seq, hash: stored.hash };
  }
  return out;
}

/** A record as it is stored (canonical JSON) and the hash the next record chains to. */
function storedFormOf(record: AuditRecord): { record: AuditRecord; bytes: Buffer; hash: string } {
  const bytes = Buffer.from(JSON.stringify(record));
  return { record, bytes, hash: hashOf(bytes) };
}

/** The record of an applied entry, chained to `head`, and its stored bytes. */
export function auditRecordOf(index: LogIndex, entry: ControlEntry, result: ApplyResult, head: ChainHead): { record: AuditRecord; bytes: Buffer; hash: string } {
  const { target, detail } = describe(entry.command);
  const record: AuditRecord = {
    seq: head.seq + 1,
    index,
    at: entry.at,
    actor: entry.actor,
    op: entry.command.op,
    target,
    detail,
    outcome: result.ok ? 'ok' : result.denied === true ? 'denied' : 'refused',
    ...(result.ok ? {} : { reason: result.reason }),
    ...(entry.token === undefined ? {} : { token: entry.token }),
    prev: head.hash,
    // Only a seal apply accepted is one: a refused entry that claims to seal is recorded as the
    // attempt it was, and verification does not take its claim for a signed head.
    ...(entry.command.op === 'audit.seal' && result.ok
      ? { seal: { seq: entry.command.seq, hash: entry.command.hash, at: entry.command.at, signer: entry.command.signer, signature: entry.command.signature } }
      : {}),
  };
  return storedFormOf(record);
}

export function hashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Records checked. */
  readonly records: number;
  readonly head: ChainHead;
  /** The first record that does not hold, and why. */
  readonly firstBad?: { readonly seq: number; readonly problem: string };
}

/**
 * Recomputes the chain from the stored bytes, in stored order: each record must parse, carry the
 * next sequence number and the previous record's hash; the last must match the recorded head,
 * and, given a checkpoint taken earlier, the record at its sequence number must have its hash.
 */
export function verifyChain(
  stored: Iterable<{ readonly key: number; readonly bytes: Uint8Array }>,
  head: ChainHead,
  checkpoint?: ChainHead,
  sealHolds?: (seal: NonNullable<AuditRecord['seal']>) => boolean,
): VerifyResult {
  let expected = emptyHead;
  let records = 0;
  /** Every record's hash so far, for the seals to be checked against. */
  const hashes: string[] = [chainOrigin];
  let checkpointSeen = checkpoint === undefined || checkpoint.seq === 0;
  const bad = (seq: number, problem: string): VerifyResult => ({ ok: false, records, head: expected, firstBad: { seq, problem } });
  for (const { key, bytes } of stored) {
    const seq = expected.seq + 1;
    if (key !== seq) return bad(seq, key > seq ? `record ${seq} is missing (the next stored is ${key})` : `record ${key} is stored out of order`);
    let record: AuditRecord;
    try {
      record = JSON.parse(Buffer.from(bytes).toString('utf8')) as AuditRecord;
    } catch {
      return bad(seq, `record ${seq} is not readable: its stored bytes were changed`);
    }
    if (record.seq !== seq) return bad(seq, `record ${seq} says it is record ${String(record.seq)}: records were moved`);
    if (record.prev !== expected.hash) {
      // Record seq-1's bytes no longer hash to what record seq recorded: one of the two was
      // changed (usually the earlier one, whose content is most of what there is to edit).
      return bad(seq - 1, `record ${seq - 1} was changed (or record ${seq}): record ${seq - 1} hashes to ${expected.hash.slice(0, 12)}, record ${seq} recorded ${String(record.prev).slice(0, 12)}`);
    }
    const hash = hashOf(bytes);
    if (record.seal !== undefined) {
      const sealed = hashes[record.seal.seq];
      if (sealed === undefined || record.seal.seq >= seq) return bad(seq, `record ${seq} seals record ${record.seal.seq}, which does not come before it`);
      if (sealed !== record.seal.hash) return bad(record.seal.seq, `record ${record.seal.seq} hashes to ${sealed.slice(0, 12)}, but record ${seq} sealed it as ${record.seal.hash.slice(0, 12)}: the trail up to it was rewritten`);
      if (sealHolds !== undefined && !sealHolds(record.seal)) return bad(seq, `record ${seq}'s seal is not signed by ${record.seal.signer}'s recorded key`);
    }
    hashes.push(hash);
    if (checkpoint !== undefined && checkpoint.seq === seq) {
      if (checkpoint.hash !== hash) return bad(seq, `record ${seq} hashes to ${hash.slice(0, 12)}, the checkpoint says ${checkpoint.hash.slice(0, 12)}`);
      checkpointSeen = true;
    }
    expected = { seq, hash };
    records += 1;
  }
  if (!checkpointSeen && checkpoint !== undefined) return bad(expected.seq + 1, `the trail ends at record ${expected.seq}, but the checkpoint holds record ${checkpoint.seq}: its tail was truncated`);
  if (expected.seq === head.seq && expected.hash !== head.hash) {
    return bad(head.seq, `record ${head.seq} was changed: it hashes to ${expected.hash.slice(0, 12)}, the recorded head says ${head.hash.slice(0, 12)}`);
  }
  if (expected.seq !== head.seq) {
    return bad(Math.min(expected.seq, head.seq) + 1, `the trail ends at record ${expected.seq}, the recorded head is record ${head.seq}: records were removed or added`);
  }
  return { ok: true, records, head: expected };
}
