// The LMDB files of one app on this node: its metadata, its versions (bundles), its
// tables and their secondary indexes, and the retained change feed. One LMDB environment per app,
// so apps never contend for one writer lock and an app's data can be moved or dropped as a folder.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Bundle, IdempotencyRecord, RecordId, StoredRecord } from '../model/app-entries.js';
import type { ChangeEvent } from '../model/change-event.js';
import type { AppVersion, LogIndex } from '../model/ids.js';

/** A stored record: `i` is the log index of its last write (its version / ETag), `v` its value. */
export interface RecordEnvelope {
  readonly i: LogIndex;
  readonly v: StoredRecord;
  /** Write time (entry timestamp, ms), kept only for tables with an expiration. */
  readonly t?: number;
}

export type VersionStatus = 'staged' | 'active' | 'retired' | 'aborted';

export interface VersionRecord {
  readonly version: AppVersion;
  readonly status: VersionStatus;
  readonly bundle: Bundle;
  /** Log index of the Stage entry. */
  readonly stagedIndex: LogIndex;
  /** The Stage entry allowed a breaking schema change. */
  readonly allowBreaking?: boolean;
  /** The Stage entry is a rollback's: its checks are not run. */
  readonly skipChecks?: boolean;
  /** Log index of the Activate entry that made it active (absent until then). */
  readonly activatedIndex?: LogIndex;
}

/** Index keys are [attribute value, record id]; a value is never null (nulls are not indexed). */
export type IndexKeyValue = string | number | boolean;
export type IndexKey = [IndexKeyValue, RecordId];

export type MetaKey = 'applied' | 'activeVersion' | 'epoch' | 'lastVersion' | 'changesFloor';

/** Tables and indexes are separate LMDB sub-databases; this bounds how many an app may have. */
const subDatabasesMax = 1000;

/** Sub-databases keyed by LMDB integer keys (snapshot copies must open them the same way). */
export const uint32KeyDatabases: ReadonlySet<string> = new Set(['versions', 'changes', 'audit']);

export class AppStore {
  readonly root: RootDatabase;
  readonly meta: Database<number, MetaKey>;
  readonly versions: Database<VersionRecord, AppVersion>;
  /** Change events by log index, kept for a window of recent entries (subscriptions' `since`). */
  readonly changes: Database<ChangeEvent[], LogIndex>;
  /** The write audit trail of tables declared @table(audit: true): each record's bytes by its
   *  sequence number (src/state/write-audit.ts gives them meaning), and the chain's head. */
  readonly audit: Database<Buffer, number>;
  readonly auditHead: Database<string | number, 'seq' | 'hash'>;
  /** Idempotency-Keys of applied writes and their answers (src/state/idempotency.ts), and the
   *  same keys ordered by when they are forgotten. */
  readonly idempotency: Database<IdempotencyRecord, string>;
  readonly idempotencyExpiry: Database<true, [number, string]>;
  private readonly tables = new Map<string, Database<RecordEnvelope, RecordId>>();
  private readonly indexes = new Map<string, Database<true, IndexKey>>();
  private readonly path: string;

  private constructor(path: string) {
    this.path = path;
    mkdirSync(path, { recursive: true });
    this.root = open({
      path,
      maxDbs: subDatabasesMax,
      // Durability: a commit is acknowledged only once it is flushed (no overlapping sync), so
      // nothing a reader or a client ever saw can be lost by a crash, of the process or the machine.
      noSync: false,
      overlappingSync: false,
      compression: false,
      // Values are plain data; structured cloning of shared structures across versions is not
      // worth the coupling to a key in the same file.
      encoding: 'msgpack',
    });
    this.meta = this.root.openDB({ name: 'meta' });
    this.versions = this.root.openDB({ name: 'versions', keyEncoding: 'uint32' });
    this.changes = this.root.openDB({ name: 'changes', keyEncoding: 'uint32' });
    this.audit = this.root.openDB({ name: 'audit', keyEncoding: 'uint32', encoding: 'binary' });
    this.auditHead = this.root.openDB({ name: 'audit-head' });
    this.idempotency = this.root.openDB({ name: 'idempotency' });
    this.idempotencyExpiry = this.root.openDB({ name: 'idempotency-expiry' });
  }

  static open(path: string): AppStore {
    return new AppStore(path);
  }

  table(name: string): Database<RecordEnvelope, RecordId> {
    let db = this.tables.get(name);
    if (db === undefined) {
      db = this.root.openDB<RecordEnvelope, RecordId>({ name: `t:${name}` });
      this.tables.set(name, db);
    }
    return db;
  }

  index(table: string, attribute: string): Database<true, IndexKey> {
    const name = `x:${table}:${attribute}`;
    let db = this.indexes.get(name);
    if (db === undefined) {
      db = this.root.openDB<true, IndexKey>({ name });
      this.indexes.set(name, db);
    }
    return db;
  }

  metaNumber(key: MetaKey): number {
    return this.meta.get(key) ?? 0;
  }

  /** The applied index recorded in a copy of an app's environment (a snapshot file). */
  static appliedIndexOf(copy: RootDatabase): LogIndex {
    return copy.openDB<number, MetaKey>({ name: 'meta' }).get('applied') ?? 0;
  }

  /** Bytes of the LMDB data file (what grows if read snapshots are held too long). */
  dataFileBytes(): number {
    try {
      return statSync(join(this.path, 'data.mdb')).size;
    } catch {
      return 0;
    }
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
