// Snapshots of a simulated node's state machine, shaped like the production SnapshotFiles: a
// snapshot is a copy of every table of the environment but the Raft log's own, taken from what
// readers see (the acknowledged state, so its applied index is exactly the snapshot's index),
// kept as a "file" on the simulated disk; installing one replaces those tables inside the
// Ready's write transaction.
import type { SnapshotStore } from '../../src/group/types.js';
import { BOOTSTRAP_INDEX, type ConfState, type LogIndex } from '../../src/raft/index.js';
import type { DiskEnvironment, SimDisk, TableKey } from './disk.js';
import { raftLogTable, raftStateTable } from './group-storage.js';

/** Bytes per chunk when a snapshot is streamed: small, so transfers take several chunks. */
const chunkBytes = 256;

interface SnapshotContent {
  readonly tables: [string, [TableKey, unknown][]][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function isRaftTable(name: string): boolean {
  return name === raftLogTable || name === raftStateTable;
}

/** The name of the file of the snapshot at `index` on a simulated disk. */
export function snapshotFileOf(index: LogIndex): string {
  return `snapshots/${index}`;
}

const incomingOf = (index: LogIndex): string => `snapshots/incoming-${index}`;

export class SimSnapshotStore implements SnapshotStore {
  constructor(
    private readonly disk: SimDisk,
    private readonly env: DiskEnvironment,
    /** The applied index the copied tables record: the state machine's convention. */
    private readonly appliedIndexOf: (tables: ReadonlyMap<string, ReadonlyMap<TableKey, unknown>>) => LogIndex,
  ) {
    // Half-received snapshots of an earlier run are useless (SnapshotFiles does the same).
    for (const name of [...disk.files.keys()]) if (name.startsWith('snapshots/incoming-')) disk.files.delete(name);
  }

  create(): Promise<{ readonly index: LogIndex; readonly confState: ConfState }> {
    const tables = new Map<string, Map<TableKey, unknown>>();
    for (const name of this.env.tableNames()) {
      if (!isRaftTable(name)) tables.set(name, new Map(this.env.table(name).entries()));
    }
    const confState = this.env.table<string, ConfState>(raftStateTable).get('confState');
    if (confState === undefined) return Promise.reject(new Error('snapshot copy has no membership'));
    const index = this.appliedIndexOf(tables);
    const content: SnapshotContent = { tables: [...tables].map(([name, table]) => [name, [...table]]) };
    this.disk.files.set(snapshotFileOf(index), encoder.encode(JSON.stringify(content)));
    return Promise.resolve({ index, confState });
  }

  async *read(index: LogIndex): AsyncIterable<Uint8Array> {
    if (index === BOOTSTRAP_INDEX) return;
    const bytes = this.disk.files.get(snapshotFileOf(index));
    if (bytes === undefined) throw new Error(`snapshot ${index} is not on this node`);
    for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) yield bytes.subarray(offset, offset + chunkBytes);
  }

  async receive(index: LogIndex, data: AsyncIterable<Uint8Array>): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of data) chunks.push(chunk);
    const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    this.disk.files.set(incomingOf(index), bytes);
  }

  installInto(index: LogIndex): void {
    if (index === BOOTSTRAP_INDEX) return;
    const bytes = this.disk.files.get(incomingOf(index));
    if (bytes === undefined) throw new Error(`snapshot ${index} was stepped before its data arrived`);
    const content = JSON.parse(decoder.decode(bytes)) as SnapshotContent;
    const incoming = new Set(content.tables.map(([name]) => name));
    for (const name of this.env.tableNames()) if (!isRaftTable(name) && !incoming.has(name)) this.env.table(name).clear();
    for (const [name, rows] of content.tables) {
      const table = this.env.table<TableKey, unknown>(name);
      table.clear();
      for (const [key, value] of rows) table.put(key, value);
    }
    this.disk.files.delete(incomingOf(index));
    this.disk.files.set(snapshotFileOf(index), bytes);
  }

  discard(index: LogIndex): void {
    this.disk.files.delete(snapshotFileOf(index));
  }

  retainOnly(index: LogIndex): void {
    for (const name of [...this.disk.files.keys()]) {
      if (/^snapshots\/\d+$/.test(name) && name !== snapshotFileOf(index)) this.disk.files.delete(name);
    }
  }
}
