// The simulator's Raft log must behave like the production one, or the simulation tests a
// different host: the same calls on SimGroupStorage and LmdbRaftStorage must read back the same
// at every step, with writes in flight or not, and after a restart. And its disk must lose
// exactly what a crash loses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { confStateOf } from '../../src/raft/index.js';
import type { Entry, HardState, Storage } from '../../src/raft/types.js';
import { LmdbRaftStorage } from '../../src/storage/raft-storage.js';
import { ProcessClock, ProcessGate } from './clock.js';
import { SimDisk, type DiskBehaviour } from './disk.js';
import { DurableLog, SimGroupStorage, type StorageObserver } from './group-storage.js';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';

const dirs: string[] = [];
const roots: RootDatabase[] = [];

afterEach(async () => {
  for (const root of roots.splice(0)) await root.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function openRoot(dir = mkdtempSync(join(tmpdir(), 'sim-storage-'))): { root: RootDatabase; dir: string } {
  if (!dirs.includes(dir)) dirs.push(dir);
  const root = open({ path: dir, maxDbs: 16, noSync: false, overlappingSync: false, compression: false, encoding: 'msgpack' });
  roots.push(root);
  return { root, dir };
}

const quietObserver: StorageObserver = { hardStateSet: () => undefined, persisted: () => undefined };

/** A simulated disk whose writes take up to `syncDelayMsMax` to be durable. */
class DiskRig {
  readonly scheduler = new Scheduler();
  readonly disk = new SimDisk();
  private readonly random = new Prng(7);
  private readonly behaviour: DiskBehaviour = { syncDelayMs: () => this.random.int(6), acknowledgesBeforeDurable: false };

  open(): SimGroupStorage {
    const gate = new ProcessGate(this.scheduler);
    const clock = new ProcessClock(this.scheduler, this.random.fork(), gate);
    return new SimGroupStorage(this.disk.open({ clock, scheduler: this.scheduler, behaviour: this.behaviour }), quietObserver);
  }

  /** Lets virtual time pass until every write issued is acknowledged. */
  async flush(pending: readonly Promise<unknown>[]): Promise<void> {
    let done = false;
    void Promise.all(pending).then(() => (done = true));
    for (let step = 0; step < 1_000 && !done; step++) {
      this.scheduler.now++;
      this.scheduler.runDue();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(done, 'writes acknowledged').toBe(true);
  }
}

/** Everything the core can read from a log. */
function readBack(storage: Storage): unknown {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const terms: number[] = [];
  for (let index = first - 1; index <= last; index++) terms.push(storage.term(index));
  const entries = first <= last ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  return {
    first,
    last,
    terms,
    entries: entries.map((entry) => ({ ...entry, data: [...entry.data] })),
    paged: first <= last ? storage.entries(first, last + 1, 40).length : 0,
    snapshot: storage.snapshot().metadata,
  };
}

describe('SimGroupStorage', () => {
  it('reads back like LmdbRaftStorage under the same pipelined calls, and after a restart', async () => {
    const { root, dir } = openRoot();
    const lmdb = new LmdbRaftStorage(root);
    const rig = new DiskRig();
    let sim = rig.open();
    const random = new Prng(20_250_101);
    const voters = confStateOf(['a', 'b', 'c']);
    lmdb.bootstrap(voters);
    sim.bootstrap(voters);
    let term = 1;
    let pending: { lmdb: Promise<unknown>[]; sim: Promise<unknown>[] } = { lmdb: [], sim: [] };
    const both = (call: (storage: LmdbRaftStorage | SimGroupStorage) => void): void => {
      call(lmdb);
      call(sim);
    };
    const flush = async (): Promise<void> => {
      await Promise.all(pending.lmdb);
      await rig.flush(pending.sim);
      pending = { lmdb: [], sim: [] };
      expect(sim.lastIndexDurable()).toBe(lmdb.lastIndexDurable());
      expect(sim.initialState()).toEqual(lmdb.initialState());
    };
    for (let step = 0; step < 400; step++) {
      const choice = random.int(100);
      if (choice < 55) {
        // An append as the core hands it out: after the last entry or over a conflicting suffix.
        const last = lmdb.lastIndex();
        const start = Math.max(lmdb.firstIndex(), last + 1 - random.int(4));
        if (random.chance(0.3)) term++;
        const entries: Entry[] = Array.from({ length: 1 + random.int(4) }, (_, i) => ({
          index: start + i,
          term,
          type: random.chance(0.1) ? 'confChange' : 'normal',
          data: new Uint8Array(random.int(30)).fill(step & 0xff),
        }));
        both((storage) => storage.append(entries));
      } else if (choice < 70) {
        const hardState: HardState = { term, vote: random.pick(['', 'a', 'b']), commit: Math.max(1, lmdb.lastIndexDurable() - random.int(3)) };
        both((storage) => storage.setHardState(hardState));
      } else if (choice < 75) {
        const confState = confStateOf(['a', 'b', random.pick(['c', 'd'])]);
        both((storage) => storage.setConfState(confState));
      } else if (choice < 93) {
        pending.lmdb.push(lmdb.write());
        pending.sim.push(sim.write());
      } else if (choice < 97) {
        await flush();
        // Compaction needs a durable log; a snapshot somewhere in it.
        const first = lmdb.firstIndex();
        const durable = lmdb.lastIndexDurable();
        if (durable > first + 2) {
          const snapshotIndex = first + 1 + random.int(durable - first - 1);
          const compactTo = Math.max(first, snapshotIndex - random.int(3));
          const metadata = { index: snapshotIndex, term: lmdb.term(snapshotIndex), confState: voters };
          both((storage) => storage.compact(compactTo, metadata));
        }
      } else {
        await flush();
        // A snapshot from the leader replaces the whole log.
        const index = lmdb.lastIndex() + random.between(-2, 5);
        if (index > lmdb.snapshot().metadata.index) {
          term++;
          const metadata = { index, term, confState: confStateOf(['a', 'b', 'c', 'e']) };
          both((storage) => storage.applySnapshot(metadata));
        }
      }
      expect(readBack(sim), `step ${step}`).toEqual(readBack(lmdb));
    }
    const final: Entry = { index: lmdb.lastIndex() + 1, term, type: 'normal', data: new Uint8Array([1]) };
    both((storage) => storage.append([final]));
    pending.lmdb.push(lmdb.write());
    pending.sim.push(sim.write());
    await flush();

    await root.close();
    roots.splice(roots.indexOf(root), 1);
    const reopened = new LmdbRaftStorage(openRoot(dir).root);
    rig.disk.crash();
    sim = rig.open();
    expect(readBack(sim)).toEqual(readBack(reopened));
    expect(sim.initialState()).toEqual(reopened.initialState());
    expect(readBack(new DurableLog(rig.disk))).toEqual(readBack(reopened));
  });

  it('loses, in a crash, what was queued or issued but not durable, and keeps what was', async () => {
    const rig = new DiskRig();
    const storage = rig.open();
    storage.bootstrap(confStateOf(['a']));
    const entry = (index: number): Entry => ({ index, term: 2, type: 'normal', data: new Uint8Array([index]) });
    storage.append([entry(2), entry(3)]);
    storage.setHardState({ term: 2, vote: 'a', commit: 3 });
    await rig.flush([storage.write()]);
    storage.append([entry(4)]);
    const issued = storage.write();
    storage.append([entry(5)]); // queued only
    // Readable from the in-memory tail at once, durable not yet.
    expect([storage.lastIndex(), storage.lastIndexDurable(), storage.term(5)]).toEqual([5, 3, 2]);
    void issued;
    rig.disk.crash();
    const restarted = rig.open();
    expect([restarted.lastIndex(), restarted.initialState().hardState.commit]).toEqual([3, 3]);
    expect(readBack(new DurableLog(rig.disk))).toEqual(readBack(restarted));
  });
});
