import { describe, expect, it } from 'vitest';
import { MemoryStorage, confStateOf } from '../../src/raft/memory-storage.js';
import { RaftLog } from '../../src/raft/raft-log.js';
import { CompactedError, UnavailableError, type Entry } from '../../src/raft/types.js';

const entry = (index: number, term: number, bytes = 0): Entry => ({ index, term, type: 'normal', data: new Uint8Array(bytes) });
const entries = (terms: number[], from = 1): Entry[] => terms.map((term, i) => entry(from + i, term));
const terms = (list: readonly Entry[]): number[] => list.map((e) => e.term);

describe('MemoryStorage', () => {
  it('appends, truncates on conflict, compacts and snapshots like etcd', () => {
    const storage = new MemoryStorage();
    storage.append(entries([1, 1, 2, 2]));
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([1, 4]);
    storage.append(entries([3, 3], 3)); // replaces 3..4
    expect(terms(storage.entries(1, 5, Infinity))).toEqual([1, 1, 3, 3]);
    storage.createSnapshot(2, confStateOf(['n1']), new Uint8Array([9]));
    storage.compact(2);
    expect(storage.firstIndex()).toBe(3);
    expect(storage.term(2)).toBe(1); // the sentinel keeps its term for matching
    expect(() => storage.entries(2, 3, Infinity)).toThrow(CompactedError);
    expect(() => storage.entries(3, 6, Infinity)).toThrow(UnavailableError);
    expect(() => storage.term(1)).toThrow(CompactedError);
    storage.applySnapshot({ metadata: { index: 10, term: 4, confState: confStateOf(['n1']) }, data: new Uint8Array() });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(10)]).toEqual([11, 10, 4]);
  });
  it('bounds entries by bytes but returns at least one', () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1, 100), entry(2, 1, 100), entry(3, 1, 100)]);
    expect(storage.entries(1, 4, 250)).toHaveLength(2);
    expect(storage.entries(1, 4, 10)).toHaveLength(1);
  });
  it('can be bootstrapped only while empty', () => {
    const storage = new MemoryStorage();
    storage.bootstrap(confStateOf(['a', 'b']));
    expect(storage.initialState().confState.voters).toEqual(['a', 'b']);
    storage.append(entries([1]));
    expect(() => storage.bootstrap(confStateOf(['c']))).toThrow();
  });
});

describe('RaftLog', () => {
  function logWith(stored: number[], unstable: number[] = []): RaftLog {
    const storage = new MemoryStorage();
    storage.append(entries(stored));
    const log = new RaftLog(storage, Infinity);
    if (unstable.length > 0) log.append(entries(unstable, stored.length + 1));
    return log;
  }

  it('appends only after matching the previous entry, truncating at the first conflict', () => {
    const log = logWith([1, 1, 2], [2]);
    expect(log.maybeAppend(4, 3, 0, [])).toBeUndefined(); // term mismatch at 4
    expect(log.maybeAppend(2, 1, 0, entries([3, 3], 3))).toBe(4);
    expect(terms(log.entries(1, Infinity))).toEqual([1, 1, 3, 3]);
    // An append that matches entirely changes nothing (a duplicate or reordered message).
    expect(log.maybeAppend(1, 1, 0, entries([1], 2))).toBe(2);
    expect(log.lastIndex()).toBe(4);
  });

  it('commits only up to the last entry this append proved to match (follower commit rule)', () => {
    const log = logWith([1, 1, 1]);
    expect(log.maybeAppend(1, 1, 3, [])).toBe(1);
    expect(log.committed).toBe(1);
  });

  it('refuses to overwrite committed entries', () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(3);
    expect(() => log.maybeAppend(1, 1, 3, entries([2], 2))).toThrow(/committed/);
  });

  it('finds the last index whose term is not newer than the hint term', () => {
    const log = logWith([1, 1, 2, 2, 5, 5]);
    expect(log.findConflictByTerm(6, 4)).toEqual({ index: 4, term: 2 });
    expect(log.findConflictByTerm(6, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(6, 0)).toEqual({ index: 0, term: 0 });
  });

  it('slices across storage and unstable entries, within a byte bound', () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1, 100), entry(2, 1, 100)]);
    const log = new RaftLog(storage, Infinity);
    log.append([entry(3, 1, 100), entry(4, 1, 100)]);
    expect(log.slice(1, 5, Infinity).map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(log.slice(2, 5, 250).map((e) => e.index)).toEqual([2, 3]);
    expect(log.slice(1, 5, 150).map((e) => e.index)).toEqual([1]);
    log.stableTo(4, 1);
    expect(log.unstableEntries()).toEqual([]);
  });

  it('commits by counting only entries of the current term (Figure 8 rule)', () => {
    const log = logWith([1, 2, 3]);
    expect(log.maybeCommit(2, 3)).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit(3, 3)).toBe(true);
    expect(log.committed).toBe(3);
  });

  it('judges up-to-dateness by last term, then by length', () => {
    const log = logWith([1, 2, 2]);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });
});
