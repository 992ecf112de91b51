// State machine snapshots of one app's group, as LMDB files. Taking one is an LMDB backup (a
// consistent copy of the committed state, so its 'applied' meta is exactly the snapshot's
// index); installing one copies every state machine database of the received file into the
// live environment, inside the Ready's write transaction. Raft's own log and hard state are
// never part of a snapshot's contents.
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { open, type RootDatabase } from 'lmdb';
import type { LogIndex } from '../model/ids.js';
import { BOOTSTRAP_INDEX, type ConfState } from '../raft/index.js';
import type { AppStore } from '../storage/app-store.js';
import { raftLogDbName, raftStateDbName } from '../storage/raft-storage.js';

/** Databases whose keys are LMDB integer keys (see app-store.ts); the rest use ordered-binary. */
const uint32KeyDatabases = new Set(['log', 'versions', 'changes']);
/** Never copied: this node's own raft log and hard state, and the single-node log. */
const excludedDatabases = new Set([raftLogDbName, raftStateDbName, 'log']);
/** Read size when streaming a snapshot file. */
const chunkBytes = 256 * 1024;
/** Named databases a snapshot file may hold (tables, indexes, metadata). */
const snapshotDatabasesMax = 1000;

export interface TakenSnapshot {
  readonly index: LogIndex;
  readonly confState: ConfState;
}

export class SnapshotFiles {
  private sequence = 0;

  constructor(
    private readonly dir: string,
    private readonly store: AppStore,
  ) {
    mkdirSync(dir, { recursive: true });
    // Half-written files of an earlier run are useless.
    for (const name of readdirSync(dir)) if (name.startsWith('tmp-') || name.startsWith('incoming-')) rmSync(join(dir, name), { recursive: true, force: true });
  }

  private pathOf(index: LogIndex): string {
    return join(this.dir, String(index));
  }

  /** Copies the committed state to a new snapshot file and says which index it holds. */
  async create(): Promise<TakenSnapshot> {
    const tmp = join(this.dir, `tmp-${process.pid}-${++this.sequence}`);
    mkdirSync(tmp, { recursive: true });
    await this.store.root.backup(tmp, true);
    const copy = open({ path: tmp, readOnly: true, maxDbs: snapshotDatabasesMax });
    let taken: TakenSnapshot;
    try {
      const meta = copy.openDB<number, string>({ name: 'meta' });
      const state = copy.openDB<ConfState, string>({ name: raftStateDbName });
      const confState = state.get('confState');
      if (confState === undefined) throw new Error('snapshot copy has no membership');
      taken = { index: meta.get('applied') ?? 0, confState };
    } finally {
      await copy.close();
    }
    const target = this.pathOf(taken.index);
    rmSync(target, { recursive: true, force: true });
    renameSync(tmp, target);
    return taken;
  }

  /** The snapshot file's bytes, in chunks. The bootstrap snapshot has no file and no bytes. */
  async *read(index: LogIndex): AsyncIterable<Uint8Array> {
    if (index === BOOTSTRAP_INDEX) return;
    const file = join(this.pathOf(index), 'data.mdb');
    if (!existsSync(file)) throw new Error(`snapshot ${index} is not on this node`);
    for await (const chunk of createReadStream(file, { highWaterMark: chunkBytes })) yield chunk as Buffer;
  }

  /** Saves a snapshot arriving from the leader, before its message is stepped. */
  async receive(index: LogIndex, data: AsyncIterable<Uint8Array>): Promise<void> {
    const target = join(this.dir, `incoming-${index}`);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    await pipeline(Readable.from(data), createWriteStream(join(target, 'data.mdb')));
  }

  /**
   * Replaces the state machine's databases with the received snapshot's. Must run inside a
   * write transaction of the store (the Ready's), so the replacement commits atomically with
   * the raft storage's new log start.
   */
  installInto(index: LogIndex): void {
    if (index === BOOTSTRAP_INDEX) return;
    const incoming = join(this.dir, `incoming-${index}`);
    if (!existsSync(join(incoming, 'data.mdb'))) throw new Error(`snapshot ${index} was stepped before its data arrived`);
    const source = open({ path: incoming, readOnly: true, maxDbs: snapshotDatabasesMax });
    try {
      const names = new Set<string>();
      for (const name of source.getKeys({})) if (typeof name === 'string' && !excludedDatabases.has(name)) names.add(name);
      for (const name of this.store.root.getKeys({})) {
        if (typeof name === 'string' && !excludedDatabases.has(name) && !names.has(name)) binaryHandle(this.store.root, name).clearSync();
      }
      for (const name of names) {
        const from = binaryHandle(source, name);
        const to = binaryHandle(this.store.root, name);
        to.clearSync();
        for (const { key, value } of from.getRange({})) to.putSync(key, value);
      }
    } finally {
      void source.close();
    }
    const kept = this.pathOf(index);
    rmSync(kept, { recursive: true, force: true });
    renameSync(incoming, kept);
  }

  discard(index: LogIndex): void {
    rmSync(this.pathOf(index), { recursive: true, force: true });
  }

  /** Removes every snapshot file but the one at `index`. */
  retainOnly(index: LogIndex): void {
    for (const name of readdirSync(this.dir)) {
      if (/^\d+$/.test(name) && Number(name) !== index) rmSync(join(this.dir, name), { recursive: true, force: true });
    }
  }
}

function binaryHandle(root: RootDatabase, name: string) {
  return root.openDB<Buffer, string | number | Buffer>({
    name,
    encoding: 'binary',
    ...(uint32KeyDatabases.has(name) ? { keyEncoding: 'uint32' as const } : {}),
  });
}
