// Entries (and at most one snapshot) the core has accepted but the host has not yet persisted.
// They move to Storage when the host calls advance() after writing a Ready.
import type { Entry, LogIndex, Snapshot, Term } from './types.js';
import { assert } from './util.js';

export class Unstable {
  /** A snapshot received from the leader, waiting to be persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries from `offset` on, contiguous. */
  entries: Entry[] = [];
  offset: LogIndex;

  constructor(offset: LogIndex) {
    this.offset = offset;
  }

  /** The first log index if the unstable snapshot decides it. */
  maybeFirstIndex(): LogIndex | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): LogIndex | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(index: LogIndex): Term | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const entry = this.entries[index - this.offset];
    return entry === undefined ? undefined : entry.term;
  }

  /** The host persisted entries up to (index, term). A term mismatch means the entries were
   *  replaced by a newer leader's after the Ready was taken: those are still unstable. */
  stableTo(index: LogIndex, term: Term): void {
    const storedTerm = this.maybeTerm(index);
    if (storedTerm === undefined || storedTerm !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: LogIndex): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    if (first === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (first <= this.offset) {
      // Replaces everything unstable; the host's storage truncates on append too.
      this.offset = first;
      this.entries = entries.slice();
    } else {
      this.entries.length = first - this.offset;
      for (const entry of entries) this.entries.push(entry);
    }
  }

  /** Entries in [lo, hi); the caller checked the bounds. */
  slice(lo: LogIndex, hi: LogIndex): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, `unstable slice [${lo}, ${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
