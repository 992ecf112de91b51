// What a replicated group is made of, generic over the entries it carries: the state machine
// it applies them to, the codec that turns them into Raft entry bytes, the storage that holds
// its log, the transport to its peers and the store of its snapshots. An app's group and the
// control plane's group are two instances of the same host over different state machines.
import type { GroupId, LogIndex, NodeId } from '../model/ids.js';
import type { ConfChange, ConfState, Entry, HardState, Message, SnapshotMetadata, Storage } from '../raft/index.js';

export interface EntryCodec<E> {
  encode(entry: E): Uint8Array;
  /** Throws on bytes that do not hold an E: a corrupt log is a fatal error of the group. */
  decode(data: Uint8Array): E;
}

/**
 * The deterministic state machine behind a group. `apply` and `restoreSnapshot` run inside the
 * storage's write transaction, in log order, and depend on nothing but the entry, its index and
 * the state they find; `applied` runs once that transaction is durable, in the same order, and
 * is where effects become visible (events published, waiters woken).
 */
export interface ReplicatedStateMachine<E, R> {
  /** The last index applied, including by a write transaction that is not durable yet. */
  lastAppliedIndex(): LogIndex;
  /** The last index applied by a durable transaction: what reads on this node reflect. */
  appliedIndex(): LogIndex;
  /** Applies the committed entry at `index`; `entry` is undefined for positions that carry
   *  nothing for the machine (a new leader's empty entry, a membership change). */
  apply(index: LogIndex, entry: E | undefined): R;
  /** The storage replaced the machine's state with a snapshot's (at `index`): re-read it. */
  restoreSnapshot(index: LogIndex): R;
  /** The transaction that produced `results` is durable. */
  applied(results: readonly AppliedEntry<R>[]): void;
}

export interface AppliedEntry<R> {
  readonly index: LogIndex;
  readonly result: R;
  /** True for the position a snapshot installed, rather than an applied entry. */
  readonly fromSnapshot: boolean;
}

/** The Raft log of a group: the core's reads, plus writes that queue until `write()` issues
 *  them in one durable transaction (see storage/raft-storage.ts for the contract). */
export interface GroupStorage extends Storage {
  bootstrap(confState: ConfState): void;
  isEmpty(): boolean;
  append(entries: readonly Entry[]): void;
  setHardState(hardState: HardState): void;
  setConfState(confState: ConfState): void;
  applySnapshot(metadata: SnapshotMetadata): void;
  compact(index: LogIndex, metadata: SnapshotMetadata): void;
  lastIndexDurable(): LogIndex;
  hasQueuedWrites(): boolean;
  write<T>(extra?: () => T): Promise<T | undefined>;
  writeSync<T>(extra?: () => T): T | undefined;
}

/** Snapshots of a group's state machine as a byte stream (for an app: an LMDB file). */
export interface SnapshotStore {
  /** Copies the durable state into a new snapshot; says which index and membership it holds. */
  create(): Promise<{ readonly index: LogIndex; readonly confState: ConfState }>;
  read(index: LogIndex): AsyncIterable<Uint8Array>;
  /** Saves a snapshot arriving from the leader, before its message is stepped. */
  receive(index: LogIndex, data: AsyncIterable<Uint8Array>): Promise<void>;
  /** Replaces the state machine's data with the received snapshot's; inside the write transaction. */
  installInto(index: LogIndex): void;
  discard(index: LogIndex): void;
  retainOnly(index: LogIndex): void;
}

/** The network as one group sees it. The node host implements it over gRPC for every group
 *  it hosts; a one-voter group has no peers and uses `noTransport`. */
export interface GroupTransport {
  send(messages: readonly Message[]): void;
  /** Asks the leader for a read point (ReadIndex) on this node's behalf. */
  readIndex(leaderId: NodeId, timeoutMs: number): Promise<LogIndex>;
  /** Streams a snapshot's data with its 'snap' message to `message.to`. */
  sendSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<void>;
}

/** Told when the group applied a membership change (the node connects to new peers). */
export type MembershipListener = (groupId: GroupId, change: ConfChange, confState: ConfState) => void;
