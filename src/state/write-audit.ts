// The audit trail of an app's tables declared `@table(audit: true)`: `apply` appends one record
// per write to such a table, in the same transaction as the write, on every replica - who asked
// (the entry's actor), what (table, id, operation, the value written), when (the entry's clock),
// at which log index and version. Records are hash-chained like the control plane's trail: each
// holds the sha256 of the previous record's stored bytes, so an edit, deletion, reordering or
// truncation of the stored trail is found by recomputing the chain (a truncated tail only against
// a head kept elsewhere).
import { createHash } from 'node:crypto';
import type { RecordId, StoredRecord, WriteEntry, WriteOp } from '../model/app-entries.js';
import type { AppVersion, LogIndex } from '../model/ids.js';
import type { AppStore } from '../storage/app-store.js';

const origin = '0'.repeat(64);

export interface WriteAuditRecord {
  readonly seq: number;
  readonly index: LogIndex;
  /** The entry's clock, ms since the epoch. */
  readonly at: number;
  /** The identity that asked; 'anonymous' on an open node. */
  readonly actor: string;
  readonly version: AppVersion;
  /** The table's exported name. */
  readonly table: string;
  readonly id: RecordId;
  readonly op: WriteOp['op'];
  /** What was written (put: the record, patch: the changes); absent for a delete. */
  readonly value?: StoredRecord;
  readonly prev: string;
}

export interface WriteAuditHead {
  readonly seq: number;
  readonly hash: string;
}

export function writeAuditHead(store: AppStore): WriteAuditHead {
  const seq = store.auditHead.get('seq');
  const hash = store.auditHead.get('hash');
  return typeof seq === 'number' && typeof hash === 'string' ? { seq, hash } : { seq: 0, hash: origin };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Inside apply's write transaction: one record per write, chained onto the stored head. */
export function appendWriteAudit(store: AppStore, index: LogIndex, entry: WriteEntry, writes: readonly { readonly table: string; readonly write: WriteOp }[]): void {
  let head = writeAuditHead(store);
  for (const { table, write } of writes) {
    const record: WriteAuditRecord = {
      seq: head.seq + 1,
      index,
      at: entry.ts,
      actor: entry.actor ?? 'anonymous',
      version: entry.version,
      table,
      id: write.id,
      op: write.op,
      ...(write.op === 'delete' ? {} : { value: write.value }),
      prev: head.hash,
    };
    const bytes = Buffer.from(JSON.stringify(record));
    head = { seq: record.seq, hash: sha256(bytes) };
    store.audit.putSync(record.seq, bytes);
  }
  store.auditHead.putSync('seq', head.seq);
  store.auditHead.putSync('hash', head.hash);
}

export interface WriteAuditQuery {
  readonly table?: string;
  readonly actor?: string;
  readonly sinceMs?: number;
  /** The newest this many matching records. */
  readonly limit: number;
}

/** Matching records, oldest first, with each one's hash. */
export function writeAuditRecords(store: AppStore, query: WriteAuditQuery): (WriteAuditRecord & { readonly hash: string })[] {
  const out: (WriteAuditRecord & { hash: string })[] = [];
  for (const { value } of store.audit.getRange({ start: 1 })) {
    let record: WriteAuditRecord;
    try {
      record = JSON.parse(value.toString('utf8')) as WriteAuditRecord;
    } catch {
      continue; // unreadable: verification names it
    }
    if (query.table !== undefined && record.table !== query.table) continue;
    if (query.actor !== undefined && record.actor !== query.actor) continue;
    if (query.sinceMs !== undefined && record.at < query.sinceMs) continue;
    out.push({ ...record, hash: sha256(value) });
    if (out.length > query.limit) out.shift();
  }
  return out;
}

export interface WriteAuditVerdict {
  readonly ok: boolean;
  readonly records: number;
  readonly head: WriteAuditHead;
  readonly firstBad?: { readonly seq: number; readonly problem: string };
}

/** Recomputes the chain from the stored bytes against the stored head and, given one taken
 *  earlier, a head kept elsewhere (which alone reveals a tail cut off with the head rewritten). */
export function verifyWriteAudit(store: AppStore, checkpoint?: WriteAuditHead): WriteAuditVerdict {
  const head = writeAuditHead(store);
  let expected: WriteAuditHead = { seq: 0, hash: origin };
  let checkpointSeen = checkpoint === undefined || checkpoint.seq === 0;
  const bad = (seq: number, problem: string): WriteAuditVerdict => ({ ok: false, records: expected.seq, head, firstBad: { seq, problem } });
  for (const { key, value } of store.audit.getRange({ start: 1 })) {
    const seq = expected.seq + 1;
    if (key !== seq) return bad(seq, key > seq ? `record ${seq} is missing` : `record ${key} is stored out of order`);
    let record: WriteAuditRecord;
    try {
      record = JSON.parse(value.toString('utf8')) as WriteAuditRecord;
    } catch {
      return bad(seq, `record ${seq} is not readable: its stored bytes were changed`);
    }
    if (record.seq !== seq) return bad(seq, `record ${seq} says it is record ${String(record.seq)}: records were moved`);
    if (record.prev !== expected.hash) return bad(seq - 1, `record ${seq - 1} was changed (or record ${seq}): the chain does not hold between them`);
    expected = { seq, hash: sha256(value) };
    if (checkpoint !== undefined && checkpoint.seq === seq) {
      if (checkpoint.hash !== expected.hash) return bad(seq, `record ${seq} hashes to ${expected.hash.slice(0, 12)}, the checkpoint says ${checkpoint.hash.slice(0, 12)}`);
      checkpointSeen = true;
    }
  }
  if (!checkpointSeen && checkpoint !== undefined) return bad(expected.seq + 1, `the trail ends at record ${expected.seq}, but the checkpoint holds record ${checkpoint.seq}: its tail was truncated`);
  if (expected.seq !== head.seq || expected.hash !== head.hash) return bad(Math.min(expected.seq, head.seq) + 1, `the stored records end at ${expected.seq} (${expected.hash.slice(0, 12)}), the recorded head is ${head.seq} (${head.hash.slice(0, 12)})`);
  return { ok: true, records: expected.seq, head };
}
