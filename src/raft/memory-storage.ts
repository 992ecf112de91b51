// An in-memory Storage for tests, the simulator and benchmarks, shaped like etcd's
// MemoryStorage: the host appends each Ready's entries, sets its hard state, applies received
// snapshots, and creates snapshots / compacts the log when its state machine allows.
import {
  CompactedError,
  NONE,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Snapshot,
  type Storage,
  type Term,
} from './types.js';
import { assert, EMPTY_BYTES, limitSize } from './util.js';

export class SnapshotOutOfDateError extends Error {
  constructor(index: LogIndex, current: LogIndex) {
    super(`snapshot at index ${index} is not newer than the current one at ${current}`);
  }
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** A simple (non-joint) configuration: the usual way to bootstrap a new group. */
export function confStateOf(voters: readonly string[], learners: readonly string[] = []): ConfState {
  return { voters: [...voters], learners: [...learners], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** Where a bootstrapped log starts: the founding membership is the snapshot at index 1, so the
 *  first proposed entry (the first leader's empty entry) has index 2. */
export const BOOTSTRAP_INDEX: LogIndex = 1;
export const BOOTSTRAP_TERM: Term = 1;

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: emptyConfState() }, data: EMPTY_BYTES };
  /** ents[0] is a sentinel standing for the snapshot's last entry (index and term only); real
   *  entries follow it, so index i lives at ents[i - ents[0].index]. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }];

  /**
   * @param staticConfState membership known to every member from the start, recorded at
   *   index 0 (before the first entry). Only for groups whose members are all founding
   *   members (tests, simulations): a node added later cannot learn this membership from the
   *   log. Use bootstrap() for groups that change membership.
   */
  constructor(staticConfState?: ConfState) {
    if (staticConfState !== undefined) {
      this.snap = { metadata: { index: 0, term: 0, confState: staticConfState }, data: EMPTY_BYTES };
    }
  }

  /**
   * Bootstraps a founding member of a new group: the storage starts from a snapshot at
   * (BOOTSTRAP_INDEX, BOOTSTRAP_TERM) that holds the founding membership and an empty state
   * machine. Every founding member bootstraps with the same ConfState; a node that joins later
   * starts with an empty MemoryStorage, and the leader sends it this snapshot (its log starts
   * after it), so the joiner learns the founding membership and then replays later changes.
   * RawNode reads the membership through initialState().
   */
  bootstrap(confState: ConfState): void {
    assert(this.lastIndex() === 0 && this.snap.metadata.index === 0, 'bootstrap needs an empty storage');
    this.snap = { metadata: { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState }, data: EMPTY_BYTES };
    this.ents = [{ term: BOOTSTRAP_TERM, index: BOOTSTRAP_INDEX, type: 'normal', data: EMPTY_BYTES }];
    this.hardState = { term: BOOTSTRAP_TERM, vote: NONE, commit: BOOTSTRAP_INDEX };
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    assert(lo <= hi, `entries(${lo}, ${hi}) has lo > hi`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(index: LogIndex): Term {
    const offset = this.ents[0]!.index;
    if (index < offset) throw new CompactedError(index);
    const entry = this.ents[index - offset];
    if (entry === undefined) throw new UnavailableError(index);
    return entry.term;
  }

  firstIndex(): LogIndex {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): LogIndex {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the log with a snapshot received from the leader (the Ready's `snapshot`). */
  applySnapshot(snapshot: Snapshot): void {
    const current = this.snap.metadata.index;
    if (snapshot.metadata.index <= current) throw new SnapshotOutOfDateError(snapshot.metadata.index, current);
    this.snap = snapshot;
    this.ents = [{ term: snapshot.metadata.term, index: snapshot.metadata.index, type: 'normal', data: EMPTY_BYTES }];
  }

  /** Records the state machine's state at `index` (which must be applied, so in the log). */
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    const current = this.snap.metadata.index;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    assert(index <= this.lastIndex(), `snapshot index ${index} is beyond last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.snap = { metadata: { index, term, confState }, data };
    return this.snap;
  }

  /** Drops entries before `index`; the entry at `index` becomes the sentinel. */
  compact(index: LogIndex): void {
    const offset = this.ents[0]!.index;
    if (index <= offset) throw new CompactedError(index);
    assert(index <= this.lastIndex(), `compact ${index} is beyond last index ${this.lastIndex()}`);
    const position = index - offset;
    const sentinel: Entry = { term: this.ents[position]!.term, index, type: 'normal', data: EMPTY_BYTES };
    const kept = this.ents.slice(position + 1);
    kept.unshift(sentinel);
    this.ents = kept;
  }

  /** Appends a Ready's entries; entries at or after the first new index are replaced. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // entirely compacted away already
    const incoming = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const position = incoming[0]!.index - this.ents[0]!.index;
    assert(position <= this.ents.length, `missing log entries before ${incoming[0]!.index}`);
    if (position < this.ents.length) this.ents.length = position; // truncate the conflicting suffix
    for (const entry of incoming) this.ents.push(entry);
  }
}
