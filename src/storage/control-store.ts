// The control plane's LMDB environment: its Raft log (storage/raft-storage.ts, in the same
// environment so that log, state and applied index share one transaction) and its state as
// plain records under typed key prefixes. The store knows nothing of what the records mean;
// src/control/ owns their shape.
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { LogIndex } from '../model/ids.js';

/** Record kinds; a key is `<kind>/<name>`. */
export type ControlRecordKind = 'node' | 'app' | 'bundle' | 'member' | 'memberKey' | 'identity' | 'token' | 'grant' | 'role';
const kinds: readonly ControlRecordKind[] = ['node', 'app', 'bundle', 'member', 'memberKey', 'identity', 'token', 'grant', 'role'];
export type ControlMetaKey = 'applied' | 'revision' | 'authRevision' | 'secured';

export class ControlStore {
  readonly root: RootDatabase;
  private readonly records: Database<unknown, string>;
  private readonly meta: Database<number, string>;
  /** The audit trail: record bytes by sequence number (src/control/audit.ts gives them meaning). */
  private readonly audit: Database<Buffer, number>;
  /** The audit chain's head: `seq` and `hash` of the last record. */
  private readonly auditMeta: Database<string | number, string>;

  constructor(path: string) {
    mkdirSync(path, { recursive: true });
    this.root = open({
      path,
      maxDbs: 8,
      // As for app stores: a commit is acknowledged once flushed, so nothing a reader saw can
      // be lost by a crash.
      noSync: false,
      overlappingSync: false,
      compression: false,
      encoding: 'msgpack',
    });
    this.records = this.root.openDB({ name: 'control' });
    this.meta = this.root.openDB({ name: 'meta' });
    this.audit = this.root.openDB({ name: 'audit', keyEncoding: 'uint32', encoding: 'binary' });
    this.auditMeta = this.root.openDB({ name: 'audit-head' });
  }

  /** Inside a write transaction: appends a record and moves the head to it. */
  appendAudit(seq: number, bytes: Buffer, hash: string): void {
    this.audit.putSync(seq, bytes);
    this.auditMeta.putSync('seq', seq);
    this.auditMeta.putSync('hash', hash);
  }

  auditHead(): { readonly seq: number; readonly hash: string } | undefined {
    const seq = this.auditMeta.get('seq');
    const hash = this.auditMeta.get('hash');
    return typeof seq === 'number' && typeof hash === 'string' ? { seq, hash } : undefined;
  }

  /** Stored audit records from `fromSeq` on, in key order, as they are on disk. */
  *auditRecords(fromSeq = 1): Generator<{ readonly key: number; readonly bytes: Buffer }> {
    for (const { key, value } of this.audit.getRange({ start: fromSeq })) yield { key, bytes: value };
  }

  /** Inside a write transaction. `undefined` removes the record. */
  put(kind: ControlRecordKind, name: string, value: unknown): void {
    if (value === undefined) this.records.removeSync(`${kind}/${name}`);
    else this.records.putSync(`${kind}/${name}`, value);
  }

  putMeta(key: ControlMetaKey, value: number): void {
    this.meta.putSync(key, value);
  }

  metaNumber(key: ControlMetaKey): number {
    return this.meta.get(key) ?? 0;
  }

  /** Every record of one kind, as committed. */
  *all(kind: ControlRecordKind): Generator<{ readonly name: string; readonly value: unknown }> {
    const prefix = `${kind}/`;
    for (const { key, value } of this.records.getRange({ start: prefix, end: `${kind}0` })) {
      yield { name: key.slice(prefix.length), value };
    }
  }

  get(kind: ControlRecordKind, name: string): unknown {
    return this.records.get(`${kind}/${name}`);
  }

  /** Databases with uint32 keys, which a snapshot copy must open the same way. */
  static readonly uint32KeyDatabases: ReadonlySet<string> = new Set(['audit']);

  static kinds(): readonly ControlRecordKind[] {
    return kinds;
  }

  /** The applied index recorded in a copy of a control environment (a snapshot file). */
  static appliedIndexOf(copy: RootDatabase): LogIndex {
    return copy.openDB<number, string>({ name: 'meta' }).get('applied') ?? 0;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
