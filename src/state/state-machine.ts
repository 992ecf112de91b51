// The deterministic state machine of one app: the only code that mutates its tables.
//
// `apply` runs inside an LMDB write transaction and must depend on nothing but the entry, its
// index and the state it finds in the store - no clock, no randomness, no process-local state
// that the store does not also hold. Every replica applying the same log gets the same bytes.
import type {
  AbortEntry,
  ActivateEntry,
  ApplyResult,
  IdempotencyClaim,
  LogEntry,
  StageEntry,
  StoredRecord,
  WriteEntry,
  WriteOp,
} from '../model/app-entries.js';
import type { ChangeEvent } from '../model/change-event.js';
import type { LogIndex } from '../model/ids.js';
import type { SchemaDef, TableDef } from '../schema/index.js';
import type { AppStore, IndexKeyValue, RecordEnvelope, VersionRecord } from '../storage/app-store.js';
import { forgetExpiredKeys, rememberKey, rememberedKey } from './idempotency.js';
import { oversizedKey, recordIdProblem } from './key-limits.js';
import type { SchemaCache } from './schema-cache.js';
import { appendWriteAudit } from './write-audit.js';

export interface ApplyOutcome {
  readonly result: ApplyResult;
  /** Change events to publish once the transaction is committed. */
  readonly events: ChangeEvent[];
  /** The state right after this entry: what becomes visible once its transaction is durable. */
  readonly state: AppliedState;
}

/** An applied position handed over once its transaction is durable (see group/types.ts). */
export interface DurableOutcome {
  readonly index: LogIndex;
  readonly result: ApplyOutcome;
  readonly fromSnapshot: boolean;
}

/** Told, in log order, what became durable: AppHost publishes events and switches versions. */
export type AppliedListener = (outcomes: readonly DurableOutcome[], previous: AppliedState) => void;

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

/**
 * The app's replicated state machine (group/types.ts ReplicatedStateMachine). It is the one
 * owner of the applied index, the active version and the epoch: `committedState()` is what
 * AppHost, the HTTP layer and subscriptions read; it moves only when a write is durable.
 */
export class StateMachine {
  /** State as of the last entry applied inside a transaction that may not be durable yet. */
  private pending: AppliedState;
  /** State as of the last durable transaction. */
  private committed: AppliedState;
  private listener: AppliedListener = () => undefined;
  /** Indexes that staged versions declare and the active one does not, by table: built when the
   *  Stage entry applies and kept current by every later write, so the Activate entry builds
   *  none. A function of the stored versions (recomputed on every stage, activate, abort,
   *  restart and snapshot), hence the same on every replica. */
  private stagedIndexes = new Map<string, readonly string[]>();

  constructor(
    private readonly store: AppStore,
    private readonly schemas: SchemaCache,
    private readonly options: StateMachineOptions,
  ) {
    this.pending = this.readState();
    this.committed = this.pending;
    this.stagedIndexes = this.computeStagedIndexes();
  }

  /** Who hears about durable applies (one listener: the app host). */
  onApplied(listener: AppliedListener): void {
    this.listener = listener;
  }

  /** The durable state: what reads, responses and subscriptions reflect. */
  committedState(): AppliedState {
    return this.committed;
  }

  lastAppliedIndex(): LogIndex {
    return this.pending.appliedIndex;
  }

  appliedIndex(): LogIndex {
    return this.committed.appliedIndex;
  }

  /** The transaction that applied `outcomes` is durable: make them visible, in order. */
  applied(outcomes: readonly DurableOutcome[]): void {
    const last = outcomes[outcomes.length - 1];
    if (last === undefined) return;
    if (last.index < this.committed.appliedIndex) {
      throw new Error(`durable apply went back from ${this.committed.appliedIndex} to ${last.index}`);
    }
    const previous = this.committed;
    this.committed = last.result.state;
    this.listener(outcomes, previous);
  }

  /** The store's state was replaced by a snapshot's at `index` (inside the write transaction). */
  restoreSnapshot(index: LogIndex): ApplyOutcome {
    this.pending = this.readState();
    this.stagedIndexes = this.computeStagedIndexes();
    // The bootstrap snapshot carries membership only: pass over its index.
    if (this.pending.appliedIndex < index) this.apply(index, undefined);
    if (this.pending.appliedIndex !== index) {
      throw new Error(`snapshot at ${index} holds a state machine applied to ${this.pending.appliedIndex}`);
    }
    return { result: { ok: true }, events: [], state: this.pending };
  }

  private readState(): AppliedState {
    return {
      appliedIndex: this.store.metaNumber('applied'),
      activeVersion: this.store.metaNumber('activeVersion'),
      epoch: this.store.metaNumber('epoch'),
      lastVersion: this.store.metaNumber('lastVersion'),
    };
  }

  /**
   * Applies the committed entry at `index`; `entry` undefined is a position that carries no app
   * entry (a new leader's empty entry, a membership change) and only advances the applied index.
   * Must be called inside a write transaction of `store.root`, for consecutive indexes.
   */
  apply(index: LogIndex, entry: LogEntry | undefined): ApplyOutcome {
    if (index !== this.pending.appliedIndex + 1) {
      throw new Error(`apply out of order: index ${index} after ${this.pending.appliedIndex}`);
    }
    if (entry === undefined) {
      this.pending = { ...this.pending, appliedIndex: index };
      this.store.meta.putSync('applied', index);
      this.retainChanges(index, []);
      return { result: { ok: true }, events: [], state: this.pending };
    }
    let outcome: EntryOutcome;
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
    return { ...outcome, state: this.pending };
  }

  private retainChanges(index: LogIndex, events: ChangeEvent[]): void {
    if (events.length > 0) this.store.changes.putSync(index, events);
    const expired = index - this.options.changeWindowEntries;
    if (expired >= 1) {
      this.store.changes.removeSync(expired);
      this.store.meta.putSync('changesFloor', expired);
    }
  }

  private applyWrite(index: LogIndex, entry: WriteEntry): EntryOutcome {
    // A remembered key comes first: a retry applies nothing, whatever changed since its first
    // attempt (its reads may conflict now, its version may be retired).
    const claim = entry.idempotency;
    if (claim !== undefined) {
      if (!wellFormedClaim(claim)) return { result: { ok: false, reason: 'invalid', detail: 'malformed idempotency claim' }, events: [] };
      const remembered = rememberedKey(this.store, claim.key, entry.ts);
      if (remembered !== undefined) {
        if (remembered.fingerprint === claim.fingerprint) return { result: { ok: true, replayOf: remembered }, events: [] };
        return { result: { ok: false, reason: 'key-reused', detail: `this Idempotency-Key was used by another request (applied at index ${remembered.index}); use a new key for a new request` }, events: [] };
      }
    }
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
      const badId = recordIdProblem(table, write.id);
      if (badId !== undefined) {
        return { result: { ok: false, reason: 'invalid', detail: `${table.exportName}.${table.primaryKey} ${badId}` }, events: [] };
      }
      const oversized = oversizedKey(table, write.id, write.op === 'delete' ? undefined : write.value);
      if (oversized !== undefined) {
        return { result: { ok: false, reason: 'invalid', detail: `${table.exportName}.${oversized.field} ${oversized.message}` }, events: [] };
      }
    }
    const events: ChangeEvent[] = [];
    const audited: { table: string; write: WriteOp }[] = [];
    for (const write of entry.writes) {
      const table = schema.tables.get(write.table) as TableDef;
      events.push(this.applyWriteOp(index, entry, table, write));
      if (table.audit) audited.push({ table: table.exportName, write });
    }
    // The record commits with the write it describes (the same transaction).
    if (audited.length > 0) appendWriteAudit(this.store, index, entry, audited);
    if (claim !== undefined) {
      rememberKey(this.store, index, claim);
      // Only keyed writes forget keys: a write without one costs what it did before keys existed,
      // and each keyed write adds one key and deletes up to eight forgotten ones.
      forgetExpiredKeys(this.store, entry.ts);
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
    const staged = this.stagedIndexes.get(table.name);
    for (const attribute of staged === undefined ? table.indexed : [...table.indexed, ...staged]) {
      const oldValues = indexValues(before?.[attribute]);
      const newValues = indexValues(after?.[attribute]);
      if (oldValues.length === 0 && newValues.length === 0) continue;
      const index = this.store.index(table.name, attribute);
      for (const value of oldValues) if (!newValues.includes(value)) index.removeSync([value, id]);
      for (const value of newValues) if (!oldValues.includes(value)) index.putSync([value, id], true);
    }
  }

  private applyStage(index: LogIndex, entry: StageEntry): EntryOutcome {
    const expected = this.pending.lastVersion + 1;
    if (entry.version !== expected) {
      return invalid(`stage of version ${entry.version}, but the next version is ${expected}`);
    }
    const record: VersionRecord = { version: entry.version, status: 'staged', bundle: entry.bundle, stagedIndex: index, ...(entry.allowBreaking === true ? { allowBreaking: true } : {}), ...(entry.skipChecks === true ? { skipChecks: true } : {}) };
    this.store.versions.putSync(entry.version, record);
    this.store.meta.putSync('lastVersion', entry.version);
    this.pending = { ...this.pending, lastVersion: entry.version };
    // Backfill: the indexes this version adds are built now, from the state at this index, and
    // kept current by every write until it is activated or aborted.
    const before = this.stagedIndexes;
    this.stagedIndexes = this.computeStagedIndexes();
    const active = this.activeSchema();
    for (const [tableName, attributes] of this.stagedIndexes) {
      const table = active?.tables.get(tableName);
      if (table === undefined) continue;
      for (const attribute of attributes) if (before.get(tableName)?.includes(attribute) !== true) this.rebuildIndex(table, attribute);
    }
    return { result: { ok: true }, events: [] };
  }

  private activeSchema(): SchemaDef | undefined {
    const { activeVersion } = this.pending;
    return activeVersion === 0 ? undefined : this.schemas.forVersion(activeVersion);
  }

  /** See stagedIndexes. A staged schema that does not parse adds none (replicas refuse it). */
  private computeStagedIndexes(): Map<string, readonly string[]> {
    const active = this.activeSchema();
    const extra = new Map<string, string[]>();
    for (const { value } of this.store.versions.getRange({ start: this.pending.activeVersion + 1 })) {
      if (value.status !== 'staged') continue;
      let schema: SchemaDef;
      try {
        schema = this.schemas.forVersion(value.version);
      } catch {
        continue;
      }
      for (const table of schema.tables.values()) {
        const current = active?.tables.get(table.name);
        if (current === undefined) continue; // a new table: no records to index yet
        for (const attribute of table.indexed) {
          if (current.indexed.includes(attribute)) continue;
          const list = extra.get(table.name) ?? [];
          if (!list.includes(attribute)) list.push(attribute);
          extra.set(table.name, list);
        }
      }
    }
    return extra;
  }

  private applyActivate(index: LogIndex, entry: ActivateEntry): EntryOutcome {
    const { epoch, activeVersion } = this.pending;
    if (entry.epoch !== epoch) return invalid(`stale activation: epoch ${entry.epoch}, current epoch ${epoch}`);
    const target = this.store.versions.get(entry.version);
    if (target === undefined) return invalid(`version ${entry.version} was never staged`);
    if (target.status === 'aborted') return invalid(`version ${entry.version} was aborted`);
    if (entry.version === activeVersion) return invalid(`version ${entry.version} is already active`);
    const next = this.schemas.forVersion(entry.version);
    const previousSchema = activeVersion === 0 ? undefined : this.schemas.forVersion(activeVersion);
    // Indexes follow the active schema: the new ones were built when the version was staged
    // (see applyStage); one it did not bring as a staged version is built now from the records
    // (deterministic: a function of the state at this index). Indexes no longer declared, by
    // this version or one still staged, are dropped.
    const maintained = this.stagedIndexes;
    for (const table of next.tables.values()) {
      const before = previousSchema?.tables.get(table.name);
      for (const attribute of table.indexed) {
        if (before?.indexed.includes(attribute) === true) continue;
        if (target.status === 'staged' && maintained.get(table.name)?.includes(attribute) === true) continue;
        this.rebuildIndex(table, attribute);
      }
    }
    if (previousSchema !== undefined) {
      const previous = this.store.versions.get(activeVersion);
      if (previous !== undefined) this.store.versions.putSync(activeVersion, { ...previous, status: 'retired' });
    }
    this.store.versions.putSync(entry.version, { ...target, status: 'active', activatedIndex: index });
    this.store.meta.putSync('activeVersion', entry.version);
    this.store.meta.putSync('epoch', epoch + 1);
    this.pending = { ...this.pending, activeVersion: entry.version, epoch: epoch + 1 };
    this.stagedIndexes = this.computeStagedIndexes();
    if (previousSchema !== undefined) this.dropUndeclaredIndexes([previousSchema], maintained);
    return { result: { ok: true }, events: [{ type: 'version', value: entry.version, index, version: entry.version }] };
  }

  /** Clears every index of `schemas` and of `staged` that neither the active schema nor a staged
   *  version declares any more. */
  private dropUndeclaredIndexes(schemas: readonly SchemaDef[], staged: ReadonlyMap<string, readonly string[]>): void {
    const active = this.activeSchema();
    const candidates = new Map<string, Set<string>>();
    for (const schema of schemas) for (const table of schema.tables.values()) candidates.set(table.name, new Set([...(candidates.get(table.name) ?? []), ...table.indexed]));
    for (const [tableName, attributes] of staged) candidates.set(tableName, new Set([...(candidates.get(tableName) ?? []), ...attributes]));
    for (const [tableName, attributes] of candidates) {
      for (const attribute of attributes) {
        const declared = active?.tables.get(tableName)?.indexed.includes(attribute) === true || this.stagedIndexes.get(tableName)?.includes(attribute) === true;
        if (!declared) this.store.index(tableName, attribute).clearSync();
      }
    }
  }

  private rebuildIndex(table: TableDef, attribute: string): void {
    const index = this.store.index(table.name, attribute);
    index.clearSync();
    for (const { key, value } of this.store.table(table.name).getRange({})) {
      for (const indexValue of indexValues(value.v[attribute])) index.putSync([indexValue, key as WriteOp['id']], true);
    }
  }

  private applyAbort(entry: AbortEntry): EntryOutcome {
    const target = this.store.versions.get(entry.version);
    if (target === undefined || target.status !== 'staged') {
      return invalid(`version ${entry.version} is not staged, so it cannot be aborted`);
    }
    this.store.versions.putSync(entry.version, { ...target, status: 'aborted' });
    // The indexes only it declared are dropped.
    const maintained = this.stagedIndexes;
    this.stagedIndexes = this.computeStagedIndexes();
    this.dropUndeclaredIndexes([], maintained);
    return { result: { ok: true }, events: [] };
  }
}

type EntryOutcome = Omit<ApplyOutcome, 'state'>;

function wellFormedClaim(claim: IdempotencyClaim): boolean {
  const { response } = claim;
  return (
    typeof claim.key === 'string' &&
    typeof claim.fingerprint === 'string' &&
    Number.isFinite(claim.untilMs) &&
    typeof response === 'object' &&
    response !== null &&
    Number.isInteger(response.status) &&
    Number.isInteger(response.version) &&
    (response.payload === undefined || response.payload instanceof Uint8Array)
  );
}

function invalid(detail: string): EntryOutcome {
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
