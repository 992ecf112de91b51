// The key-value model (kv-state-machine.ts) as the production group host wants a state machine:
// its maps and its applied index are tables of the simulated disk, written inside the Ready's
// transaction, so they are exactly as durable as the log that produced them. Applying (inside
// the transaction) sees every earlier apply; reads from clients see what is acknowledged.
import type { AppliedEntry, ReplicatedStateMachine } from '../../src/group/types.js';
import type { LogIndex } from '../../src/raft/index.js';
import type { KvOutput, KvValue } from '../../src/testing/linearizability/index.js';
import type { DiskEnvironment, EnvTable, TableKey } from './disk.js';
import { KvStateMachine, type KvCommand } from './kv-state-machine.js';

/** What applying a command says: its output, or undefined for a duplicate or an entry that
 *  carries no command. */
export type KvResult = KvOutput | undefined;

const valuesTable = 'kv:values';
const sessionsTable = 'kv:sessions';
const metaTable = 'kv:meta';

/** The applied index recorded in a copy of the machine's tables (a snapshot's contents). */
export function appliedIndexOfTables(tables: ReadonlyMap<string, ReadonlyMap<TableKey, unknown>>): LogIndex {
  return (tables.get(metaTable)?.get('applied') as LogIndex | undefined) ?? 0;
}

export interface KvMachineObserver {
  /** The machine applies the entry at `index` (inside its write transaction, not durable yet). */
  applying(index: LogIndex): void;
  /** The machine's state is being replaced by a snapshot's at `index` (likewise). */
  restoring(index: LogIndex): void;
  /** The write that produced `results` is durable: these applies happened for good. */
  applied(results: readonly AppliedEntry<KvResult>[]): void;
}

export class KvReplicatedMachine implements ReplicatedStateMachine<KvCommand, KvResult> {
  private readonly meta: EnvTable<string, LogIndex>;
  private readonly model: KvStateMachine;
  private pending: LogIndex;
  private committed: LogIndex;

  constructor(
    env: DiskEnvironment,
    private readonly observer: KvMachineObserver,
  ) {
    const values = env.table<string, string>(valuesTable);
    const sessions = env.table<number, number>(sessionsTable);
    this.meta = env.table(metaTable);
    this.model = new KvStateMachine({
      values: { get: (key) => values.get(key), set: (key, value) => values.put(key, value) },
      lastSeqByClient: { get: (clientId) => sessions.get(clientId), set: (clientId, seq) => sessions.put(clientId, seq) },
    });
    this.pending = this.meta.get('applied') ?? 0;
    this.committed = this.pending;
  }

  /** A client's read: the acknowledged state. */
  read(key: string): KvValue {
    return this.model.read(key);
  }

  lastAppliedIndex(): LogIndex {
    return this.pending;
  }

  appliedIndex(): LogIndex {
    return this.committed;
  }

  apply(index: LogIndex, entry: KvCommand | undefined): KvResult {
    if (index !== this.pending + 1) throw new Error(`kv apply of ${index} after ${this.pending}`);
    this.observer.applying(index);
    const output = entry === undefined ? undefined : this.model.apply(entry);
    this.meta.put('applied', index);
    this.pending = index;
    return output;
  }

  restoreSnapshot(index: LogIndex): KvResult {
    this.pending = this.meta.get('applied') ?? 0;
    // The bootstrap snapshot carries no data: the machine only passes over its index.
    if (this.pending < index) {
      this.meta.put('applied', index);
      this.pending = index;
    }
    this.observer.restoring(index);
    return undefined;
  }

  applied(results: readonly AppliedEntry<KvResult>[]): void {
    const last = results[results.length - 1];
    if (last !== undefined) this.committed = last.index;
    this.observer.applied(results);
  }
}
