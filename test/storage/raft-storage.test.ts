import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open, type RootDatabase } from 'lmdb';
import { LmdbRaftStorage } from '../../src/storage/raft-storage.js';
import { termCacheEntriesMax } from '../../src/storage/raft-term-cache.js';
import { confStateOf, SnapshotOutOfDateError } from '../../src/raft/index.js';
import { CompactedError, UnavailableError, type Entry } from '../../src/raft/types.js';

const entry = (index: number, term: number, bytes = 0): Entry => ({ index, term, type: 'normal', data: new Uint8Array(bytes).fill(index & 0xff) });
const entries = (terms: number[], from = 1): Entry[] => terms.map((term, i) => entry(from + i, term));
const terms = (list: readonly Entry[]): number[] => list.map((e) => e.term);

const dirs: string[] = [];
const roots: RootDatabase[] = [];

/** Opened like AppStore does (synced commits), in a fresh temp dir unless one is given. */
function openRoot(dir = mkdtempSync(join(tmpdir(), 'raft-storage-'))): { root: RootDatabase; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const root = open({ path: dir, maxDbs: 16, noSync: false, overlappingSync: false, compression: false, encoding: 'msgpack' });
  roots.push(root);
  return { root, dir };
}

afterEach(async () => {
  for (const root of roots.splice(0)) await root.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The host's way of writing: the storage queues the changes, one transaction writes them. */
function write(storage: LmdbRaftStorage, action: () => void): void {
  action();
  storage.writeSync();
}

describe('LmdbRaftStorage', () => {
  it('appends, truncates on conflict, compacts and snapshots like MemoryStorage', () => {
    const { root } = openRoot();
    const storage = new LmdbRaftStorage(root);
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([1, 0]);
    write(storage, () => storage.append(entries([1, 1, 2, 2])));
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([1, 4]);
    write(storage, () => storage.append(entries([3, 3], 3))); // replaces 3..4
    expect(terms(storage.entries(1, 5, Infinity))).toEqual([1, 1, 3, 3]);
    // A shorter conflicting append drops the longer tail too.
    write(storage, () => storage.append(entries([4], 2)));
    expect([storage.lastIndex(), ...terms(storage.entries(1, 3, Infinity))]).toEqual([2, 1, 4]);
    expect(() => storage.term(3)).toThrow(UnavailableError);
    write(storage, () => storage.append(entries([4, 4, 4], 3)));
    write(storage, () => storage.compact(2, { index: 3, term: 4, confState: confStateOf(['n1']) }));
    expect(storage.firstIndex()).toBe(3);
    expect(storage.term(2)).toBe(4); // the compacted entry keeps its term for matching
    expect(storage.snapshot().metadata).toMatchObject({ index: 3, term: 4 });
    expect(storage.snapshot().data.byteLength).toBe(0);
    expect(() => storage.entries(2, 3, Infinity)).toThrow(CompactedError);
    expect(() => storage.entries(3, 7, Infinity)).toThrow(UnavailableError);
    expect(() => storage.term(1)).toThrow(CompactedError);
    expect(() => storage.compact(2, storage.snapshot().metadata)).toThrow(CompactedError);
    expect(storage.entries(3, 6, Infinity).map((e) => e.index)).toEqual([3, 4, 5]);
    // An append that starts in the compacted prefix keeps only its new part.
    write(storage, () => storage.append(entries([4, 4, 4, 4, 5], 2)));
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(6)]).toEqual([3, 6, 5]);
    write(storage, () => storage.applySnapshot({ index: 10, term: 6, confState: confStateOf(['n1', 'n2']) }));
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(10)]).toEqual([11, 10, 6]);
    expect(storage.initialState().confState.voters).toEqual(['n1', 'n2']);
    expect(() => storage.entries(11, 12, Infinity)).toThrow(UnavailableError);
    expect(() => write(storage, () => storage.applySnapshot({ index: 9, term: 6, confState: confStateOf(['n1']) }))).toThrow(SnapshotOutOfDateError);
    expect(root.openDB({ name: 'raft:log', keyEncoding: 'uint32' }).getKeysCount()).toBe(0);
  });

  it('bounds entries by bytes but returns at least one, and round-trips data and types', () => {
    const { root } = openRoot();
    const storage = new LmdbRaftStorage(root);
    const confChange: Entry = { index: 4, term: 1, type: 'confChange', data: new Uint8Array([1, 2, 3]) };
    write(storage, () => storage.append([entry(1, 1, 100), entry(2, 1, 100), entry(3, 1, 100), confChange]));
    expect(storage.entries(1, 4, 250)).toHaveLength(2);
    expect(storage.entries(1, 4, 10)).toHaveLength(1);
    expect(storage.entries(2, 2, 10)).toEqual([]);
    const read = storage.entries(1, 5, Infinity);
    expect(read[3]).toEqual(confChange);
    expect(read[1]!.data).toBeInstanceOf(Uint8Array);
    expect([...read[1]!.data.subarray(0, 3)]).toEqual([2, 2, 2]);
  });

  it('can be bootstrapped only while empty, and the log then starts after index 1', () => {
    const { root } = openRoot();
    const storage = new LmdbRaftStorage(root);
    storage.bootstrap(confStateOf(['a', 'b']));
    expect(storage.initialState()).toEqual({ hardState: { term: 1, vote: '', commit: 1 }, confState: confStateOf(['a', 'b']) });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(1)]).toEqual([2, 1, 1]);
    write(storage, () => storage.append(entries([2], 2)));
    expect(() => storage.bootstrap(confStateOf(['c']))).toThrow();
  });

  it('keeps hard state, membership, log and compaction across close and reopen', async () => {
    const { root, dir } = openRoot();
    const storage = new LmdbRaftStorage(root);
    storage.bootstrap(confStateOf(['a']));
    write(storage, () => {
      storage.append(entries([2, 2, 3, 3, 3], 2));
      storage.setHardState({ term: 3, vote: 'a', commit: 5 });
    });
    write(storage, () => storage.compact(3, { index: 4, term: 3, confState: confStateOf(['a', 'b']) }));
    write(storage, () => storage.setConfState(confStateOf(['a', 'b', 'c'])));
    // The host's asynchronous transaction joins the same contract.
    storage.append(entries([4], 7));
    await storage.write();
    await root.close();
    roots.splice(roots.indexOf(root), 1);

    const reopened = openRoot(dir);
    const again = new LmdbRaftStorage(reopened.root);
    expect(again.initialState()).toEqual({ hardState: { term: 3, vote: 'a', commit: 5 }, confState: confStateOf(['a', 'b', 'c']) });
    expect([again.firstIndex(), again.lastIndex(), again.term(3), again.term(7)]).toEqual([4, 7, 2, 4]);
    expect(terms(again.entries(4, 8, Infinity))).toEqual([3, 3, 3, 4]);
    expect(again.snapshot().metadata).toEqual({ index: 4, term: 3, confState: confStateOf(['a', 'b']) });
  });

  it('measures appending and reading entries in synced transactions', async () => {
    const { root } = openRoot();
    const storage = new LmdbRaftStorage(root);
    const batches = 50;
    const perBatch = 200;
    const payloadBytes = 256;
    let started = performance.now();
    for (let batch = 0; batch < batches; batch++) {
      const list = Array.from({ length: perBatch }, (_, i) => entry(batch * perBatch + i + 1, 1, payloadBytes));
      storage.append(list);
      await storage.write();
    }
    const appendMs = performance.now() - started;
    started = performance.now();
    let read = 0;
    for (let lo = 1; lo <= batches * perBatch; lo += 1000) read += storage.entries(lo, lo + 1000, Infinity).length;
    const readMs = performance.now() - started;
    expect(read).toBe(batches * perBatch);
    console.log(
      `${batches} synced commits of ${perBatch} x ${payloadBytes} B entries: ${appendMs.toFixed(0)} ms ` +
        `(${((appendMs * 1000) / (batches * perBatch)).toFixed(1)} us/entry); read back: ${((readMs * 1000) / read).toFixed(2)} us/entry`,
    );
  });

  it('answers terms beyond the in-memory cache from LMDB', () => {
    const { root } = openRoot();
    const storage = new LmdbRaftStorage(root);
    const count = termCacheEntriesMax + 500;
    const list: Entry[] = [];
    for (let index = 1; index <= count; index++) list.push(entry(index, 1 + Math.floor(index / 1000)));
    write(storage, () => storage.append(list));
    for (const index of [1, 2, 499, 500, 501, 1000, count - 1, count]) expect(storage.term(index)).toBe(1 + Math.floor(index / 1000));
    // Truncating deep into the uncached part resets the cache consistently.
    write(storage, () => storage.append(entries([99, 99], 100)));
    expect([storage.lastIndex(), storage.term(99), storage.term(100), storage.term(101)]).toEqual([101, 1, 99, 99]);
  });
});
