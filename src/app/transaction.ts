// A request's view of an app: reads come from the committed local state and are remembered with
// the version (log index) they saw; writes are buffered into a write set. The write set is
// proposed as one log entry, and `apply` rejects it if anything it read changed meanwhile, so
// resource code may run on any replica and still be serializable.
import type { ReadDependency, RecordId, StoredRecord, WriteOp } from '../model/app-entries.js';
import { Problem } from '../model/problem.js';
import { executeQuery } from '../query/execute.js';
import type { Query } from '../query/types.js';
import type { TableDef } from '../schema/index.js';
import { oversizedKey, recordIdProblem } from '../state/key-limits.js';
import { mergePatch } from '../state/state-machine.js';
import type { RecordEnvelope } from '../storage/app-store.js';
import type { AppRuntime } from './runtime.js';
import { uuidV7 } from './uuid-v7.js';
import { LmdbTableReader } from './table-reader.js';

/** Upper bound on records one transaction may write (one log entry carries them all). */
export const transactionWritesMax = 10_000;

function recordKey(table: string, id: RecordId): string {
  return `${table}\u0000${typeof id === 'number' ? 'n' : 's'}${id}`;
}

export class Transaction {
  private readonly reads = new Map<string, ReadDependency>();
  private readonly writes = new Map<string, WriteOp>();

  constructor(
    readonly runtime: AppRuntime,
    /** Wall clock of this attempt; used only to hide expired records, never stored. */
    private readonly nowMs: number,
  ) {}

  /** The committed envelope of a record, remembered as a read dependency. Expired records are absent. */
  readEnvelope(table: TableDef, id: RecordId): RecordEnvelope | undefined {
    checkRecordId(table, id);
    const envelope = this.runtime.store.table(table.name).get(id);
    const key = recordKey(table.name, id);
    if (!this.reads.has(key)) this.reads.set(key, { table: table.name, id, expectedIndex: envelope?.i ?? 0 });
    if (envelope !== undefined && isExpired(table, envelope, this.nowMs)) return undefined;
    return envelope;
  }

  /** The record as this transaction sees it: its own buffered writes first. */
  get(table: TableDef, id: RecordId): StoredRecord | undefined {
    const pending = this.writes.get(recordKey(table.name, id));
    const committed = this.readEnvelope(table, id)?.v;
    if (pending === undefined) return committed;
    if (pending.op === 'delete') return undefined;
    if (pending.op === 'put') return pending.value;
    return mergePatch(committed, pending.value);
  }

  /** Requires the record to still be at `expectedIndex` when the write set applies (If-Match). */
  expectIndex(table: TableDef, id: RecordId, expectedIndex: number): void {
    const envelope = this.readEnvelope(table, id);
    if ((envelope?.i ?? 0) !== expectedIndex) {
      throw new Problem('precondition-failed', { detail: `${table.exportName}/${String(id)} is at version ${envelope?.i ?? 0}, not ${expectedIndex}` });
    }
  }

  put(table: TableDef, id: RecordId, value: StoredRecord): void {
    checkRecordId(table, id);
    const record = { ...value, [table.primaryKey]: id };
    this.validate(table, record, 'full', id);
    this.buffer({ op: 'put', table: table.name, id, value: record });
  }

  patch(table: TableDef, id: RecordId, partial: StoredRecord): void {
    if (partial[table.primaryKey] !== undefined && partial[table.primaryKey] !== id) {
      throw new Problem('invalid', { detail: 'the primary key cannot be changed', errors: [{ field: table.primaryKey, message: 'does not match the id in the path' }] });
    }
    this.validate(table, partial, 'patch', id);
    const key = recordKey(table.name, id);
    const pending = this.writes.get(key);
    if (pending?.op === 'put') {
      this.buffer({ op: 'put', table: table.name, id, value: mergePatch(pending.value, partial) });
    } else if (pending?.op === 'patch') {
      this.buffer({ op: 'patch', table: table.name, id, value: { ...pending.value, ...partial } });
    } else {
      // A patch reads the record it merges into: if it changes first, the merge reruns.
      if (this.readEnvelope(table, id) === undefined && pending === undefined) {
        throw new Problem('not-found', { detail: `${table.exportName}/${String(id)} does not exist` });
      }
      this.buffer({ op: 'patch', table: table.name, id, value: { ...partial } });
    }
  }

  /** Deletes the record only if it is still at `expectedIndex` when the entry applies (the
   *  expiry sweeper: a record rewritten meanwhile survives). Works on expired records too. */
  deleteAtVersion(table: TableDef, id: RecordId, expectedIndex: number): void {
    const key = recordKey(table.name, id);
    if (!this.reads.has(key)) this.reads.set(key, { table: table.name, id, expectedIndex });
    this.buffer({ op: 'delete', table: table.name, id });
  }

  delete(table: TableDef, id: RecordId): boolean {
    checkRecordId(table, id);
    const existed = this.get(table, id) !== undefined;
    this.buffer({ op: 'delete', table: table.name, id });
    return existed;
  }

  /** A new record with a generated primary key (a UUIDv7: ids made later sort later) unless the
   *  record carries one. */
  create(table: TableDef, record: StoredRecord): RecordId {
    let id = record[table.primaryKey] as RecordId | undefined;
    if (id === undefined || id === null) {
      if (table.primaryKeyType !== 'ID' && table.primaryKeyType !== 'String') {
        throw new Problem('invalid', { errors: [{ field: table.primaryKey, message: `is required (${table.primaryKeyType} keys are not generated)` }] });
      }
      id = uuidV7(this.nowMs);
    }
    this.put(table, id, record);
    return id;
  }

  search(table: TableDef, query: Query): StoredRecord[] {
    const reader = new LmdbTableReader(this.runtime, table, this.nowMs);
    const tableConfig = this.runtime.config.tables[table.name];
    const records = executeQuery(query, reader, {
      allowScan: tableConfig?.allowScan ?? this.runtime.config.rest.allowScan,
      maxResults: this.runtime.config.rest.queryResultsMax,
    });
    for (const id of reader.visitedIds()) {
      const key = recordKey(table.name, id.id);
      if (!this.reads.has(key)) this.reads.set(key, { table: table.name, id: id.id, expectedIndex: id.index });
    }
    return records;
  }

  hasWrites(): boolean {
    return this.writes.size > 0;
  }

  readDependencies(): ReadDependency[] {
    return [...this.reads.values()];
  }

  writeOps(): WriteOp[] {
    return [...this.writes.values()];
  }

  /** The newest version among everything read: the ETag of a derived response. */
  newestReadIndex(): number {
    let newest = 0;
    for (const read of this.reads.values()) if (read.expectedIndex > newest) newest = read.expectedIndex;
    return newest;
  }

  private buffer(write: WriteOp): void {
    const key = recordKey(write.table, write.id);
    if (!this.writes.has(key) && this.writes.size >= transactionWritesMax) {
      throw new Problem('too-large', { detail: `a transaction may write at most ${transactionWritesMax} records` });
    }
    this.writes.set(key, write);
  }

  private validate(table: TableDef, record: StoredRecord, mode: 'full' | 'patch', id: RecordId): void {
    const validator = this.runtime.validators.get(table.name);
    if (validator === undefined) throw new Error(`no validator for table ${table.name}`);
    const errors = [...validator(record, mode)];
    const oversized = oversizedKey(table, id, record);
    if (oversized !== undefined) errors.push(oversized);
    if (errors.length > 0) {
      throw new Problem('invalid', { type: 'validation', detail: `invalid ${table.exportName} record`, errors });
    }
  }
}

/** Every table call names its record by an id that its URL can address (key-limits.ts). */
function checkRecordId(table: TableDef, id: unknown): asserts id is RecordId {
  const problem = recordIdProblem(table, id);
  if (problem !== undefined) {
    throw new Problem('invalid', { detail: `invalid ${table.exportName} id: ${problem}`, errors: [{ field: table.primaryKey, message: problem }] });
  }
}

export function isExpired(table: TableDef, envelope: RecordEnvelope, nowMs: number): boolean {
  return table.expirationSeconds !== undefined && envelope.t !== undefined && envelope.t + table.expirationSeconds * 1000 <= nowMs;
}
