// The log as the state machine sees it: persisted entries (Storage) followed by unstable ones,
// with the commit and apply cursors. Invariant: applied <= committed <= lastIndex.
import { CompactedError, UnavailableError, type Entry, type LogIndex, type Snapshot, type Storage, type Term } from './types.js';
import { Unstable } from './unstable.js';
import { assert, limitSize } from './util.js';

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: LogIndex;
  /** Highest index the host reported applied. */
  applied: LogIndex;
  /** Bound on the committed entries handed out per Ready. */
  private readonly committedBytesPerReadyMax: number;

  constructor(storage: Storage, committedBytesPerReadyMax: number) {
    this.storage = storage;
    this.committedBytesPerReadyMax = committedBytesPerReadyMax;
    const firstIndex = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): LogIndex {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the log. The
   *  entry just before firstIndex() keeps its term for append matching. */
  term(index: LogIndex): Term | undefined {
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    if (index + 1 < this.firstIndex() || index > this.lastIndex()) return undefined;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (error instanceof CompactedError || error instanceof UnavailableError) return undefined;
      throw error;
    }
  }

  lastTerm(): Term {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'term of the last entry must be known');
    return term;
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * A follower's AppendEntries: if our log matches the leader's at (index, logTerm), append
   * `entries` (truncating at the first conflict) and commit up to min(leaderCommit, last index
   * of this append) — never beyond what this very message proved we share with the leader.
   * Returns the last index of the appended range, or undefined on a mismatch.
   */
  maybeAppend(index: LogIndex, logTerm: Term, leaderCommit: LogIndex, entries: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflictIndex = this.findConflict(entries);
    if (conflictIndex !== 0) {
      assert(conflictIndex > this.committed, `entry ${conflictIndex} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflictIndex - (index + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): LogIndex {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `appending after ${after} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** First index whose term differs from ours (or that we do not have), or 0 if all match. */
  findConflict(entries: readonly Entry[]): LogIndex {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (0 if unknown). Used
   * on a rejected append to skip a whole divergent term per round trip instead of one entry.
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    for (; index > 0; index--) {
      const ourTerm = this.term(index);
      if (ourTerm === undefined) return { index, term: 0 };
      if (ourTerm <= term) return { index, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return; // the commit index never decreases
    assert(index <= this.lastIndex(), `commit ${index} is beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Leader commit rule (Raft §5.4.2, Figure 8): an index replicated on a quorum is committed
   *  by counting only if its entry is from the current term. */
  maybeCommit(quorumIndex: LogIndex, currentTerm: Term): boolean {
    if (quorumIndex > this.committed && this.term(quorumIndex) === currentTerm) {
      this.commitTo(quorumIndex);
      return true;
    }
    return false;
  }

  appliedTo(index: LogIndex): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, `applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  stableTo(index: LogIndex, term: Term): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: LogIndex): void {
    this.unstable.stableSnapshotTo(index);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** The snapshot to send a lagging follower: an unstable one if any, else Storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Committed entries not yet applied, bounded by bytes per Ready. */
  nextCommittedEntries(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= lo) return [];
    return this.slice(lo, this.committed + 1, this.committedBytesPerReadyMax);
  }

  /** Entries from `index` to the end, bounded by bytes. Throws CompactedError if compacted. */
  entries(index: LogIndex, maxBytes: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  /** Entries in [lo, hi), at most maxBytes (at least one). Copies only the requested range. */
  slice(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    assert(lo <= hi, `slice lo ${lo} > hi ${hi}`);
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    assert(hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    const offset = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < offset) {
      const storedHi = Math.min(hi, offset);
      result = this.storage.entries(lo, storedHi, maxBytes);
      if (result.length < storedHi - lo) return result; // the byte bound was reached in storage
    }
    if (hi > offset) {
      const fresh = this.unstable.slice(Math.max(lo, offset), hi);
      // concat, not push: the array from Storage may be the storage's own.
      result = result.length === 0 ? fresh : result.concat(fresh);
    }
    return limitSize(result, maxBytes) as Entry[];
  }
}
