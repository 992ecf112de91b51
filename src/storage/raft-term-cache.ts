// The terms of the most recent log entries, kept in memory so that the core's frequent term()
// calls (every append it receives, every commit decision) do not read LMDB. Older terms are read
// from the log on a miss; the cache is an optimisation, never the source of truth.
import type { LogIndex, Term } from '../raft/types.js';
import { assert } from '../raft/util.js';

/** Terms remembered; 64 Ki entries cost ~0.5 MiB per group and cover any replication window
 *  the core's inflight bounds allow. */
export const termCacheEntriesMax = 65_536;

export class TermCache {
  /** Index of terms[head]. */
  private firstIndex: LogIndex = 1;
  private head = 0;
  private terms: Term[] = [];

  /** Forgets everything; the next append starts at `nextIndex`. */
  reset(nextIndex: LogIndex): void {
    this.firstIndex = nextIndex;
    this.head = 0;
    this.terms = [];
  }

  /** The cached term at `index`, or undefined when not cached. */
  get(index: LogIndex): Term | undefined {
    const position = index - this.firstIndex;
    if (position < 0 || position >= this.terms.length - this.head) return undefined;
    return this.terms[this.head + position];
  }

  /** Index the next appended term must have. */
  nextIndex(): LogIndex {
    return this.firstIndex + this.terms.length - this.head;
  }

  /** Records the term of the entry at `index`, which must follow the last cached one (the
   *  caller truncates first on a conflict). */
  append(index: LogIndex, term: Term): void {
    assert(index === this.nextIndex(), `term cache append at ${index}, expected ${this.nextIndex()}`);
    this.terms.push(term);
    if (this.terms.length - this.head > termCacheEntriesMax) {
      this.head++;
      this.firstIndex++;
      // Compact the backing array once the dead prefix is as large as the live part, so the
      // shift costs O(1) amortised and the array stays within twice the bound.
      if (this.head >= termCacheEntriesMax) {
        this.terms = this.terms.slice(this.head);
        this.head = 0;
      }
    }
  }

  /** Drops the terms at `index` and after (a conflicting suffix is being replaced). */
  truncateFrom(index: LogIndex): void {
    if (index >= this.nextIndex()) return;
    if (index <= this.firstIndex) {
      this.reset(index);
      return;
    }
    this.terms.length = this.head + (index - this.firstIndex);
  }

  /** Drops the terms before `index` (compaction). */
  dropBefore(index: LogIndex): void {
    if (index <= this.firstIndex) return;
    if (index >= this.nextIndex()) {
      this.reset(index);
      return;
    }
    this.head += index - this.firstIndex;
    this.firstIndex = index;
  }
}
