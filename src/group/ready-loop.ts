// The Ready loop of one group, with pipelined writes.
//
// For each Ready the loop, synchronously: records the snapshot, entries and hard state in the
// storage (memory now, LMDB writes queued), decodes the committed entries and applies their
// membership changes to the core, issues ONE write transaction holding the queued log writes
// and the state machine's apply of the committed entries, and calls advance(). It then takes
// the next Ready at once, without waiting for the previous write's fsync: writes commit in the
// order they were issued, and lmdb-js batches the ones issued while a commit is in flight into
// the next transaction (etcd's asynchronous storage writes, with the storage keeping entries
// that are not yet durable readable from memory).
//
// What makes that safe is when messages leave:
// - A Ready's messages wait until its write, and every write before it, is durable: a vote,
//   an append acknowledgement or a commit index never vouches for state that a crash could
//   still lose. A Ready without a write of its own waits for the last write in flight.
// - The one exception (Raft dissertation 10.2.1): a leader's appends and heartbeats whose
//   commit field is already durable here leave at once, so followers write in parallel with
//   the leader. The leader counts its own entries in the commit index before its write is
//   durable, but that commit reaches nobody (clients, followers) before the write is durable:
//   answers and later commit fields wait for a later write, which commits after this one.
// - Apply outcomes (proposals answered, events published, reads served) are handed over only
//   once the write that applied them is durable.
import type { Logger } from '../observability/logger.js';
import type { RaftGroupMetrics } from '../observability/metrics.js';
import type { LogIndex } from '../model/ids.js';
import { decodeConfChange, type ConfChange, type ConfState, type Message, type RawNode, type ReadState, type Ready, type SoftState } from '../raft/index.js';
import type { Clock } from './clock.js';
import { check } from './errors.js';
import { unwrapProposal } from './proposal-envelope.js';
import type { AppliedEntry, EntryCodec, GroupStorage, ReplicatedStateMachine, SnapshotStore } from './types.js';

/** Writes issued and not yet durable, at most; the loop takes no new Ready beyond it. */
export const inflightWritesMax = 64;

/** The outcome of one write, handed over in log order once it is durable. */
export interface DurableWrite<R> {
  readonly applied: readonly KeyedResult<R>[];
  readonly readStates: readonly ReadState[];
  readonly membershipChanges: readonly { readonly change: ConfChange; readonly confState: ConfState }[];
  readonly snapshotInstalled: boolean;
}

/** An applied entry with the key of the request that proposed it (undefined: no proposer). */
export interface KeyedResult<R> extends AppliedEntry<R> {
  readonly proposalKey: string | undefined;
}

interface PlannedApply<E> {
  readonly index: LogIndex;
  readonly entry: E | undefined;
  readonly key: string | undefined;
}

interface InflightWrite<R> {
  done: boolean;
  results: KeyedResult<R>[];
  readonly held: Message[];
  readonly readStates: ReadState[];
  readonly membershipChanges: { readonly change: ConfChange; readonly confState: ConfState }[];
  readonly snapshotInstalled: boolean;
}

export interface ReadyLoopOptions<E, R> {
  readonly node: RawNode;
  readonly storage: GroupStorage;
  readonly machine: ReplicatedStateMachine<E, R>;
  readonly codec: EntryCodec<E>;
  /** Undefined for a group that never ships snapshots (a one-voter group). */
  readonly snapshots: SnapshotStore | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: RaftGroupMetrics;
  readonly send: (messages: readonly Message[]) => void;
  readonly onSoftState: (softState: SoftState) => void;
  readonly onDurable: (write: DurableWrite<R>) => void;
  /** Persisting or applying failed, or an invariant broke: the group must stop. */
  readonly onFatal: (error: unknown) => void;
}

export class ReadyLoop<E, R> {
  private readonly inflight: InflightWrite<R>[] = [];
  /** The last index handed to the state machine for applying (its write may be in flight). */
  private appliedPlanned: LogIndex;
  private scheduled = false;
  private stopped = false;

  constructor(private readonly options: ReadyLoopOptions<E, R>) {
    this.appliedPlanned = options.machine.lastAppliedIndex();
  }

  /** Processes Readies on a later turn (once per turn, however often it is called). */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.options.clock.defer(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  stop(): void {
    this.stopped = true;
  }

  inflightWrites(): number {
    return this.inflight.length;
  }

  private drain(): void {
    const { node } = this.options;
    try {
      while (!this.stopped && this.inflight.length < inflightWritesMax && node.hasReady()) {
        const ready = node.ready();
        this.handle(ready);
        node.advance(ready);
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private handle(ready: Ready): void {
    const { storage, machine, node } = this.options;
    if (ready.softState !== undefined) this.options.onSoftState(ready.softState);
    // 1. The log: in memory now, LMDB writes queued for this Ready's transaction.
    let snapshotIndex: LogIndex | undefined;
    if (ready.snapshot !== undefined && ready.snapshot.metadata.index > storage.snapshot().metadata.index) {
      snapshotIndex = ready.snapshot.metadata.index;
      storage.applySnapshot(ready.snapshot.metadata);
      this.appliedPlanned = snapshotIndex;
    }
    const durableBefore = storage.lastIndexDurable();
    storage.append(ready.entries);
    if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
    // 2. What to apply. Membership changes reach the core now (it gates the next change on
    //    them); their new ConfState is written with this Ready.
    const planned: PlannedApply<E>[] = [];
    const membershipChanges: InflightWrite<R>['membershipChanges'] = [];
    for (const entry of ready.committedEntries) {
      if (entry.index <= this.appliedPlanned) continue; // covered by an installed snapshot
      check(entry.index === this.appliedPlanned + 1, `committed entry ${entry.index} follows ${this.appliedPlanned}`);
      this.appliedPlanned = entry.index;
      if (entry.type === 'confChange') {
        const change = decodeConfChange(entry.data);
        const confState = node.applyConfChange(change);
        storage.setConfState(confState);
        membershipChanges.push({ change, confState });
        planned.push({ index: entry.index, entry: undefined, key: undefined });
      } else if (entry.data.byteLength === 0) {
        planned.push({ index: entry.index, entry: undefined, key: undefined });
      } else {
        const { key, payload } = unwrapProposal(entry.data);
        planned.push({ index: entry.index, entry: this.options.codec.decode(payload), key });
      }
    }
    // 3. Which messages may leave before this Ready's write is durable.
    const early: Message[] = [];
    const held: Message[] = [];
    for (const message of ready.messages) {
      const leaderAppend = (message.type === 'app' || message.type === 'heartbeat') && message.commit <= durableBefore;
      (leaderAppend && snapshotIndex === undefined ? early : held).push(message);
    }
    if (early.length > 0) this.sendNow(early);
    // 4. The write: log, hard state, membership, snapshot data and the state machine's apply.
    const needsWrite = storage.hasQueuedWrites() || planned.length > 0 || snapshotIndex !== undefined;
    if (!needsWrite) {
      const last = this.inflight[this.inflight.length - 1];
      if (last === undefined) {
        this.sendNow(held);
        this.options.onDurable({ applied: [], readStates: ready.readStates, membershipChanges: [], snapshotInstalled: false });
      } else {
        // They may vouch for what the writes in flight hold: they leave with the last one.
        last.held.push(...held);
        last.readStates.push(...ready.readStates);
      }
      return;
    }
    const write: InflightWrite<R> = {
      done: false,
      results: [],
      held,
      readStates: [...ready.readStates],
      membershipChanges,
      snapshotInstalled: snapshotIndex !== undefined,
    };
    this.inflight.push(write);
    const startedMs = performance.now();
    const entriesWritten = ready.entries.length;
    storage
      .write(() => this.applyInTransaction(snapshotIndex, planned))
      .then(
        (results) => {
          this.options.metrics.readyPersisted((performance.now() - startedMs) / 1000, entriesWritten);
          write.results = results ?? [];
          write.done = true;
          this.completeWrites();
        },
        (error: unknown) => this.fail(error),
      );
  }

  /** Inside the write transaction, in issue order. */
  private applyInTransaction(snapshotIndex: LogIndex | undefined, planned: readonly PlannedApply<E>[]): KeyedResult<R>[] {
    const { machine } = this.options;
    const results: KeyedResult<R>[] = [];
    if (snapshotIndex !== undefined) {
      this.options.snapshots?.installInto(snapshotIndex);
      results.push({ index: snapshotIndex, result: machine.restoreSnapshot(snapshotIndex), fromSnapshot: true, proposalKey: undefined });
      check(machine.lastAppliedIndex() === snapshotIndex, `state machine at ${machine.lastAppliedIndex()} after restoring the snapshot at ${snapshotIndex}`);
    }
    for (const item of planned) {
      check(item.index === machine.lastAppliedIndex() + 1, `apply of ${item.index} after ${machine.lastAppliedIndex()}`);
      results.push({ index: item.index, result: machine.apply(item.index, item.entry), fromSnapshot: false, proposalKey: item.key });
    }
    return results;
  }

  private completeWrites(): void {
    try {
      while (this.inflight.length > 0 && (this.inflight[0] as InflightWrite<R>).done) {
        const write = this.inflight.shift() as InflightWrite<R>;
        this.sendNow(write.held);
        this.options.onDurable({
          applied: write.results,
          readStates: write.readStates,
          membershipChanges: write.membershipChanges,
          snapshotInstalled: write.snapshotInstalled,
        });
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    // The loop may have stopped taking Readies at the in-flight bound.
    this.schedule();
  }

  private sendNow(messages: readonly Message[]): void {
    if (messages.length > 0 && !this.stopped) this.options.send(messages);
  }

  private fail(error: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.onFatal(error);
  }
}
