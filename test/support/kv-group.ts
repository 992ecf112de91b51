// A small key-value state machine on its own LMDB environment: a group that is not an app's,
// hosted by the same node host as app groups (as the control plane's group will be).
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { systemClock } from '../../src/group/clock.js';
import { RaftGroup } from '../../src/group/raft-group.js';
import type { AppliedEntry, EntryCodec, GroupTransport, ReplicatedStateMachine } from '../../src/group/types.js';
import type { LogIndex, NodeId } from '../../src/model/ids.js';
import type { Logger } from '../../src/observability/logger.js';
import { LmdbRaftStorage } from '../../src/storage/raft-storage.js';
import { SnapshotFiles } from '../../src/storage/snapshot-files.js';

export type KvEntry = { readonly op: 'put'; readonly key: string; readonly value: string } | { readonly op: 'delete'; readonly key: string };

/** What applying an entry says: whether the key existed before. */
export interface KvResult {
  readonly existed: boolean;
}

export const kvCodec: EntryCodec<KvEntry> = {
  encode: (entry) => new TextEncoder().encode(JSON.stringify(entry)),
  decode: (data) => {
    const entry = JSON.parse(new TextDecoder().decode(data)) as KvEntry;
    if (entry.op !== 'put' && entry.op !== 'delete') throw new Error('not a kv entry');
    return entry;
  },
};

export class LmdbKvMachine implements ReplicatedStateMachine<KvEntry, KvResult> {
  readonly root: RootDatabase;
  private readonly data: Database<string, string>;
  private readonly meta: Database<number, string>;
  private pending: LogIndex;
  private committed: LogIndex;

  constructor(dir: string) {
    this.root = open({ path: dir, maxDbs: 8, noSync: false, overlappingSync: false, compression: false, encoding: 'msgpack' });
    this.data = this.root.openDB({ name: 'kv' });
    this.meta = this.root.openDB({ name: 'meta' });
    this.pending = this.meta.get('applied') ?? 0;
    this.committed = this.pending;
  }

  static appliedIndexOf(copy: RootDatabase): LogIndex {
    return copy.openDB<number, string>({ name: 'meta' }).get('applied') ?? 0;
  }

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  lastAppliedIndex(): LogIndex {
    return this.pending;
  }

  appliedIndex(): LogIndex {
    return this.committed;
  }

  apply(index: LogIndex, entry: KvEntry | undefined): KvResult {
    if (index !== this.pending + 1) throw new Error(`kv apply of ${index} after ${this.pending}`);
    let existed = false;
    if (entry !== undefined) {
      existed = this.data.get(entry.key) !== undefined;
      if (entry.op === 'put') this.data.putSync(entry.key, entry.value);
      else this.data.removeSync(entry.key);
    }
    this.meta.putSync('applied', index);
    this.pending = index;
    return { existed };
  }

  restoreSnapshot(index: LogIndex): KvResult {
    this.pending = this.meta.get('applied') ?? 0;
    if (this.pending < index) this.apply(index, undefined);
    return { existed: false };
  }

  applied(results: readonly AppliedEntry<KvResult>[]): void {
    const last = results[results.length - 1];
    if (last !== undefined) this.committed = last.index;
  }
}

export interface KvGroup {
  readonly machine: LmdbKvMachine;
  readonly group: RaftGroup<KvEntry, KvResult>;
  close(): Promise<void>;
}

export function openKvGroup(options: {
  readonly dataDir: string;
  readonly nodeId: NodeId;
  readonly voters: readonly NodeId[];
  readonly transport: GroupTransport;
  readonly logger: Logger;
  readonly fatal: unknown[];
}): KvGroup {
  const machine = new LmdbKvMachine(join(options.dataDir, 'lmdb'));
  const group = new RaftGroup<KvEntry, KvResult>({
    groupId: 'kv',
    nodeId: options.nodeId,
    storage: new LmdbRaftStorage(machine.root),
    machine,
    codec: kvCodec,
    snapshots: new SnapshotFiles(join(options.dataDir, 'snapshots'), machine.root, LmdbKvMachine.appliedIndexOf, new Set()),
    transport: options.transport,
    clock: systemClock,
    logger: options.logger,
    metrics: { leaderChanged: () => undefined, proposed: () => undefined, readyPersisted: () => undefined, committed: () => undefined, snapshot: () => undefined },
    initialVoters: options.voters,
    electionTicks: 10,
    heartbeatTicks: 1,
    snapshotEveryEntries: 50,
    compactMarginEntries: 10,
    onFatal: (error) => options.fatal.push(error),
  });
  return {
    machine,
    group,
    close: async () => {
      group.stop();
      await machine.root.close();
    },
  };
}
