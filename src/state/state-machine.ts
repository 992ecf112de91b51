// The deterministic state machine of one app: the only code that mutates its tables.
//
// `apply` runs inside an LMDB write transaction and must depend on nothing but the entry, its
// index and the state it finds in the store - no clock, no randomness, no process-local state
// that the store does not also hold. Every replica applying the same log gets the same bytes.
import type {
  AbortEntry,
  ActivateEntry,
  ApplyResult,
  LogEntry,
  StageEntry,
  StoredRecord,
  WriteEntry,
  WriteOp,
} from '../model/app-entries.js';
import type { ChangeEvent } from '../model/change-event.js';
import type { LogIndex } from '../model/ids.js';
import type { TableDef } from '../schema/index.js';
import type { AppStore, IndexKeyValue, RecordEnvelope, VersionRecord } from '../storage/app-store.js';
import { oversizedKey } from './key-limits.js';
import type { SchemaCache } from './schema-cache.js';

export interface ApplyOutcome {
  readonly result: ApplyResult;
  /** Change events to publish once the transaction is committed. */
  readonly events: ChangeEvent[];
}

export interface StateMachineOptions {
  /** How many recent log entries keep their change events (subscriptions' `since` window). */
  readonly changeWindowEntries: number;
}

/** The part of the state that every request consults; a copy advances only on commit. */
export interface AppliedState {
  readonly appliedIndex: LogIndex;
  readonly activeVersion: number;
  readonly epoch: number;
  readonly lastVersion: number;
}

export class StateMachine {
  /** State as of the last entry applied inside the current (uncommitted) transaction. */
  private pending: AppliedState;

  constructor(
    private readonly store: AppStore,
    private readonly schemas: SchemaCache,
    private readonly options: StateMachineOptions,
  ) {
    this.pending = {
      appliedIndex: store.metaNumber('applied'),
      activeVersion: store.metaNumber('activeVersion'),
      epoch: store.metaNumber('epoch'),
      lastVersion: store.metaNumber('lastVersion'),
    };
  }

  /** The state including entries applied in a transaction that may not be committed yet. */
  pendingState(): AppliedState {
    return this.pending;
  }

  /** Re-reads the state from the store, after it was replaced wholesale (a snapshot install). */
  reload(): void {
    this.pending = {
      appliedIndex: this.store.metaNumber('applied'),
      activeVersion: this.store.metaNumber('activeVersion'),
      epoch: this.store.metaNumber('epoch'),
      lastVersion: this.store.metaNumber('lastVersion'),
    };
  }

  /** Advances the applied index over a log position that carries no app entry (a new leader's
   *  empty entry, a membership change). Inside a write transaction, like apply. */
  applyNoop(index: LogIndex): void {
    if (index !== this.pending.appliedIndex + 1) {
      throw new Error(`apply out of order: index ${index} after ${this.pending.appliedIndex}`);
    }
    this.pending = { ...this.pending, appliedIndex: index };
    this.store.meta.putSync('applied', index);
    this.retainChanges(index, []);
  }

  /** Must be called inside a write transaction of `store.root`, for consecutive indexes. */
  apply(index: LogIndex, entry: LogEntry): ApplyOutcome {
    if (index !== this.pending.appliedIndex + 1) {
      throw new Error(`apply out of order: index ${index} after ${this.pending.appliedIndex}`);
    }
    let outcome: ApplyOutcome;
    switch (entry.kind) {
      case 'write':
        outcome = this.applyWrite(index, entry);
        break;
      case 'stage':
        outcome = this.applyStage(index, entry);
        break;
      case 'activate':
        outcome = this.applyActivate(index, entry);
        break;
      case 'abort':
        outcome = this.applyAbort(entry);
        break;
    }
    this.pending = { ...this.pending, appliedIndex: index };
    this.store.meta.putSync('applied', index);
    this.retainChanges(index, outcome.events);
    return outcome;
  }

  private retainChanges(index: LogIndex, events: ChangeEvent[]): void {
    if (events.length > 0) this.store.changes.putSync(index, events);
    const expired = index - this.options.changeWindowEntries;
    if (expired >= 1) {
      this.store.changes.removeSync(expired);
      this.store.meta.putSync('changesFloor', expired);
    }
  }

  private applyWrite(index: LogIndex, entry: WriteEntry): ApplyOutcome {
    const { activeVersion } = this.pending;
    if (entry.version !== activeVersion) {
      return { result: { ok: false, reason: 'version', activeVersion }, events: [] };
    }
    for (const read of entry.reads) {
      const current = this.store.table(read.table).get(read.id);
      if ((current?.i ?? 0) !== read.expectedIndex) {
        return { result: { ok: false, reason: 'conflict', table: read.table, id: read.id }, events: [] };
      }
    }
    const schema = this.schemas.forVersion(activeVersion);
    // Validate the whole write set before touching anything, so a bad entry changes nothing.
    for (const write of entry.writes) {
      const table = schema.tables.get(write.table);
      if (table === undefined) {
        return { result: { ok: false, reason: 'invalid', detail: `unknown table ${write.table}` }, events: [] };
      }
      const oversized = oversizedKey(table, write.id, write.op === 'delete' ? undefined : write.value);
      if (oversized !== undefined) {
        return { result: { ok: false, reason: 'invalid', detail: `${table.exportName}.${oversized.field} ${oversized.message}` }, events: [] };
      }
    }
    const events: ChangeEvent[] = [];
    for (const write of entry.writes) {
      const table = schema.tables.get(write.table) as TableDef;
      events.push(this.applyWriteOp(index, entry, table, write));
    }
    return { result: { ok: true }, events };
  }

  private applyWriteOp(index: LogIndex, entry: WriteEntry, table: TableDef, write: WriteOp): ChangeEvent {
    const db = this.store.table(table.name);
    const previous = db.get(write.id);
    const eventBase = { table: table.exportName, id: write.id, index, version: entry.version };
    if (write.op === 'delete') {
      if (previous !== undefined) {
        this.updateIndexes(table, write.id, previous.v, undefined);
        db.removeSync(write.id);
      }
      return { type: 'delete', ...eventBase };
    }
    const value: StoredRecord = write.op === 'put' ? { ...write.value } : mergePatch(previous?.v, write.value);
    value[table.primaryKey] = write.id;
    if (table.createdTimeAttribute !== undefined) {
      value[table.createdTimeAttribute] = previous?.v[table.createdTimeAttribute] ?? entry.ts;
    }
    if (table.updatedTimeAttribute !== undefined) value[table.updatedTimeAttribute] = entry.ts;
    this.updateIndexes(table, write.id, previous?.v, value);
    const envelope: RecordEnvelope = table.expirationSeconds === undefined ? { i: index, v: value } : { i: index, v: value, t: entry.ts };
    db.putSync(write.id, envelope);
    return { type: write.op, ...eventBase, value };
  }

  private updateIndexes(table: TableDef, id: WriteOp['id'], before: StoredRecord | undefined, after: StoredRecord | undefined): void {
    for (const attribute of table.indexed) {
      const oldValues = indexValues(before?.[attribute]);
      const newValues = indexValues(after?.[attribute]);
      if (oldValues.length === 0 && newValues.length === 0) continue;
      const index = this.store.index(table.name, attribute);
      for (const value of oldValues) if (!newValues.includes(value)) index.removeSync([value, id]);
      for (const value of newValues) if (!oldValues.includes(value)) index.putSync([value, id], true);
    }
  }

  private applyStage(index: LogIndex, entry: StageEntry): ApplyOutcome {
    const expected = this.pending.lastVersion + 1;
    if (entry.version !== expected) {
      return invalid(`stage of version ${entry.version}, but the next version is ${expected}`);
    }
    const record: VersionRecord = { version: entry.version, status: 'staged', bundle: entry.bundle, stagedIndex: index };
    this.store.versions.putSync(entry.version, record);
    this.store.meta.putSync('lastVersion', entry.version);
    this.pending = { ...this.pending, lastVersion: entry.version };
    return { result: { ok: true }, events: [] };
  }

  private applyActivate(index: LogIndex, entry: ActivateEntry): ApplyOutcome {
    const { epoch, activeVersion } = this.pending;
    if (entry.epoch !== epoch) return invalid(`stale activation: epoch ${entry.epoch}, current epoch ${epoch}`);
    const target = this.store.versions.get(entry.version);
    if (target === undefined) return invalid(`version ${entry.version} was never staged`);
    if (target.status === 'aborted') return invalid(`version ${entry.version} was aborted`);
    if (entry.version === activeVersion) return invalid(`version ${entry.version} is already active`);
    const next = this.schemas.forVersion(entry.version);
    const previousSchema = activeVersion === 0 ? undefined : this.schemas.forVersion(activeVersion);
    // Indexes follow the active schema: build the new ones from the records (deterministic: a
    // function of the state at this index), drop the ones no longer declared.
    for (const table of next.tables.values()) {
      const before = previousSchema?.tables.get(table.name);
      for (const attribute of table.indexed) {
        if (before?.indexed.includes(attribute) === true) continue;
        this.rebuildIndex(table, attribute);
      }
    }
    if (previousSchema !== undefined) {
      for (const table of previousSchema.tables.values()) {
        const after = next.tables.get(table.name);
        for (const attribute of table.indexed) {
          if (after?.indexed.includes(attribute) !== true) this.store.index(table.name, attribute).clearSync();
        }
      }
      const previous = this.store.versions.get(activeVersion);
      if (previous !== undefined) this.store.versions.putSync(activeVersion, { ...previous, status: 'retired' });
    }
    this.store.versions.putSync(entry.version, { ...target, status: 'active' });
    this.store.meta.putSync('activeVersion', entry.version);
    this.store.meta.putSync('epoch', epoch + 1);
    this.pending = { ...this.pending, activeVersion: entry.version, epoch: epoch + 1 };
    return { result: { ok: true }, events: [{ type: 'version', value: entry.version, index, version: entry.version }] };
  }

  private rebuildIndex(table: TableDef, attribute: string): void {
    const index = this.store.index(table.name, attribute);
    index.clearSync();
    for (const { key, value } of this.store.table(table.name).getRange({})) {
      for (const indexValue of indexValues(value.v[attribute])) index.putSync([indexValue, key as WriteOp['id']], true);
    }
  }

  private applyAbort(entry: AbortEntry): ApplyOutcome {
    const target = this.store.versions.get(entry.version);
    if (target === undefined || target.status !== 'staged') {
      return invalid(`version ${entry.version} is not staged, so it cannot be aborted`);
    }
    this.store.versions.putSync(entry.version, { ...target, status: 'aborted' });
    return { result: { ok: true }, events: [] };
  }
}

function invalid(detail: string): ApplyOutcome {
  return { result: { ok: false, reason: 'invalid', detail }, events: [] };
}

/** JSON merge patch semantics on the top level: null removes an attribute. */
export function mergePatch(base: StoredRecord | undefined, patch: StoredRecord): StoredRecord {
  const merged: StoredRecord = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** The index entries of one attribute value: lists index each distinct element; null and
 *  objects are not indexed. */
export function indexValues(value: unknown): IndexKeyValue[] {
  if (Array.isArray(value)) {
    const out: IndexKeyValue[] = [];
    for (const element of value) if (isIndexable(element) && !out.includes(element)) out.push(element);
    return out;
  }
  return isIndexable(value) ? [value] : [];
}

function isIndexable(value: unknown): value is IndexKeyValue {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}
