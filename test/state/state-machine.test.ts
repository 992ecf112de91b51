// The state machine against real LMDB files: the same log gives the same state on every replica,
// optimistic concurrency and version checks reject what they must, and nothing else mutates tables.
import { afterEach, describe, expect, it } from 'vitest';
import { bundleHash } from '../../src/app/bundle.js';
import type { Bundle, LogEntry, WriteOp } from '../../src/model/app-entries.js';
import type { ChangeEvent } from '../../src/model/change-event.js';
import { SchemaCache } from '../../src/state/schema-cache.js';
import { StateMachine } from '../../src/state/state-machine.js';
import { AppStore } from '../../src/storage/app-store.js';
import { removeDir, tempDir } from '../support/dev-server.js';
import { openSingleGroup, type SingleGroup } from '../support/single-group.js';

const schemaV1 = `
type Item @table {
  id: ID @primaryKey
  name: String
  price: Float @indexed
  created: Long @createdTime
  updated: Long @updatedTime
}`;
const schemaV2 = `${schemaV1.replace('name: String', 'name: String @indexed')}`;

function bundle(schema: string): Bundle {
  const files = { 'schema.graphql': schema };
  return { hash: bundleHash(files), files };
}

/** splitmix32: a tiny seeded PRNG, so a failing run can be replayed from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
}

const openGroups: { group: SingleGroup; dir: string }[] = [];
afterEach(async () => {
  for (const { group, dir } of openGroups.splice(0)) {
    await group.close();
    removeDir(dir);
  }
});

/** A replica: the state machine behind a one-voter group, the log `lockstep dev` writes. */
async function replica(): Promise<{ store: AppStore; log: SingleGroup; events: ChangeEvent[] }> {
  const dir = tempDir('lockstep-sm-');
  const group = await openSingleGroup(dir);
  openGroups.push({ group, dir });
  return { store: group.store, log: group, events: group.events };
}

function randomLog(seed: number, length: number): LogEntry[] {
  const random = prng(seed);
  const entries: LogEntry[] = [
    { kind: 'stage', version: 1, bundle: bundle(schemaV1) },
    { kind: 'activate', version: 1, epoch: 0 },
  ];
  let version = 1;
  for (let n = 0; n < length; n++) {
    const roll = random();
    if (roll < 0.02 && version === 1) {
      entries.push({ kind: 'stage', version: 2, bundle: bundle(schemaV2) }, { kind: 'activate', version: 2, epoch: 1 });
      version = 2;
      continue;
    }
    const writes: WriteOp[] = [];
    const count = 1 + Math.floor(random() * 3);
    for (let w = 0; w < count; w++) {
      const id = `k${Math.floor(random() * 20)}`;
      const op = random();
      if (op < 0.6) writes.push({ op: 'put', table: 'Item', id, value: { name: `n${Math.floor(random() * 5)}`, price: Math.floor(random() * 10) } });
      else if (op < 0.85) writes.push({ op: 'patch', table: 'Item', id, value: { price: Math.floor(random() * 10) } });
      else writes.push({ op: 'delete', table: 'Item', id });
    }
    // Some write sets depend on a read that is stale on purpose (a conflict), some on the
    // wrong version.
    const reads = random() < 0.3 ? [{ table: 'Item', id: `k${Math.floor(random() * 20)}`, expectedIndex: Math.floor(random() * entries.length) }] : [];
    entries.push({ kind: 'write', version: random() < 0.05 ? version + 1 : version, reads, writes, ts: 1_700_000_000_000 + n });
  }
  return entries;
}

function dump(store: AppStore): unknown {
  return {
    items: [...store.table('Item').getRange({})].map(({ key, value }) => [key, value]),
    priceIndex: [...store.index('Item', 'price').getKeys({})],
    nameIndex: [...store.index('Item', 'name').getKeys({})],
    meta: [...store.meta.getRange({})].map(({ key, value }) => [key, value]),
  };
}

describe('state machine', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    it(`two replicas applying the same log (seed ${seed}) hold identical state and emit identical events`, async () => {
      const entries = randomLog(seed, 300);
      const a = await replica();
      const b = await replica();
      const resultsA = [];
      for (const entry of entries) resultsA.push((await a.log.propose(entry)).result);
      // Replica b receives the same entries in one burst (one commit batch): same outcome.
      const resultsB = (await Promise.all(entries.map((entry) => b.log.propose(entry)))).map((p) => p.result);
      expect(resultsB).toEqual(resultsA);
      expect(dump(b.store)).toEqual(dump(a.store));
      expect(b.events).toEqual(a.events);
      expect(resultsA.some((r) => !r.ok && r.reason === 'conflict')).toBe(true);
      // The index always matches the records.
      const prices = [...a.store.table('Item').getRange({})].filter(({ value }) => typeof value.v.price === 'number').map(({ key, value }) => [value.v.price, key]);
      expect([...a.store.index('Item', 'price').getKeys({})]).toEqual(prices.sort((x, y) => (x[0] as number) - (y[0] as number) || String(x[1]).localeCompare(String(y[1]))));
    });
  }

  it('rejects a write set whose read changed, and one from an inactive version, changing nothing', async () => {
    const { log, store } = await replica();
    await log.propose({ kind: 'stage', version: 1, bundle: bundle(schemaV1) });
    await log.propose({ kind: 'activate', version: 1, epoch: 0 });
    const first = await log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Item', id: 'a', value: { price: 1 } }], ts: 10 });
    expect(first.result.ok).toBe(true);
    const stale = await log.propose({ kind: 'write', version: 1, reads: [{ table: 'Item', id: 'a', expectedIndex: 0 }], writes: [{ op: 'put', table: 'Item', id: 'a', value: { price: 2 } }], ts: 11 });
    expect(stale.result).toEqual({ ok: false, reason: 'conflict', table: 'Item', id: 'a' });
    const wrongVersion = await log.propose({ kind: 'write', version: 7, reads: [], writes: [{ op: 'put', table: 'Item', id: 'a', value: { price: 3 } }], ts: 12 });
    expect(wrongVersion.result).toEqual({ ok: false, reason: 'version', activeVersion: 1 });
    expect(store.table('Item').get('a')).toEqual({ i: first.index, v: { id: 'a', price: 1, created: 10, updated: 10 } });
  });

  it('refuses an entry that cannot be encoded before it reaches the log; the log keeps going', async () => {
    const { log, store } = await replica();
    await log.propose({ kind: 'stage', version: 1, bundle: bundle(schemaV1) });
    await log.propose({ kind: 'activate', version: 1, epoch: 0 });
    // A value the codec cannot write makes this proposal fail at propose time, before the log.
    const bad = log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Item', id: 'x', value: { price: 1, name: Symbol('not storable') as unknown as string } }], ts: 1 });
    const good = log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Item', id: 'y', value: { price: 2 } }], ts: 2 });
    await expect(bad).rejects.toThrow();
    const accepted = await good;
    expect(accepted.result).toEqual({ ok: true });
    expect(store.table('Item').get('x')).toBeUndefined();
    expect([...store.index('Item', 'price').getKeys({})]).toEqual([[2, 'y']]);
    const next = await log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'delete', table: 'Item', id: 'y' }], ts: 3 });
    expect(next.index).toBe(accepted.index + 1);
    expect(log.group.healthy()).toBe(true);
  });

  it('takes timestamps from the entry, keeps createdTime across replaces, and CAS-checks activations', async () => {
    const { log, store } = await replica();
    await log.propose({ kind: 'stage', version: 1, bundle: bundle(schemaV1) });
    await log.propose({ kind: 'activate', version: 1, epoch: 0 });
    await log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Item', id: 'a', value: { price: 1 } }], ts: 100 });
    await log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Item', id: 'a', value: { price: 2 } }], ts: 200 });
    expect(store.table('Item').get('a')?.v).toEqual({ id: 'a', price: 2, created: 100, updated: 200 });
    await log.propose({ kind: 'stage', version: 2, bundle: bundle(schemaV2) });
    const stale = await log.propose({ kind: 'activate', version: 2, epoch: 0 });
    expect(stale.result.ok).toBe(false);
    const activated = await log.propose({ kind: 'activate', version: 2, epoch: 1 });
    expect(activated.result.ok).toBe(true);
    // The new index was built from the existing records when the version activated.
    expect([...store.index('Item', 'name').getKeys({})]).toEqual([]);
    await log.propose({ kind: 'write', version: 2, reads: [], writes: [{ op: 'put', table: 'Item', id: 'b', value: { name: 'x', price: 1 } }], ts: 300 });
    expect([...store.index('Item', 'name').getKeys({})]).toEqual([['x', 'b']]);
    // Rollback is just another activation.
    expect((await log.propose({ kind: 'activate', version: 1, epoch: 2 })).result.ok).toBe(true);
    expect(store.metaNumber('activeVersion')).toBe(1);
    expect([...store.index('Item', 'name').getKeys({})]).toEqual([]);
  });

  it('builds a staged version\'s new indexes at its Stage, keeps them current until Activate, and drops them on Abort', async () => {
    const { store, log } = await replica();
    await log.propose({ kind: 'stage', version: 1, bundle: bundle(schemaV1) });
    await log.propose({ kind: 'activate', version: 1, epoch: 0 });
    await log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Item', id: 'a', value: { name: 'apple', price: 1 } }, { op: 'put', table: 'Item', id: 'b', value: { name: 'pear', price: 2 } }], ts: 1 });
    const names = (): unknown[] => [...store.index('Item', 'name').getKeys({})];
    expect(names()).toEqual([]);
    // Staged: the index of `name` holds the records as of the Stage index...
    await log.propose({ kind: 'stage', version: 2, bundle: bundle(schemaV2) });
    expect(names()).toEqual([['apple', 'a'], ['pear', 'b']]);
    // ...and follows the writes of the active version after it.
    await log.propose({ kind: 'write', version: 1, reads: [], writes: [{ op: 'patch', table: 'Item', id: 'a', value: { name: 'apricot' } }, { op: 'delete', table: 'Item', id: 'b' }, { op: 'put', table: 'Item', id: 'c', value: { name: 'fig', price: 3 } }], ts: 2 });
    expect(names()).toEqual([['apricot', 'a'], ['fig', 'c']]);
    // Activate builds nothing: the index is already what a rebuild would give.
    expect((await log.propose({ kind: 'activate', version: 2, epoch: 1 })).result.ok).toBe(true);
    expect(names()).toEqual([['apricot', 'a'], ['fig', 'c']]);
    // Back to version 1 (a new stage of its schema drops nothing it declares), then a staged
    // version that is aborted: its index goes with it.
    await log.propose({ kind: 'stage', version: 3, bundle: bundle(schemaV1) });
    expect((await log.propose({ kind: 'activate', version: 3, epoch: 2 })).result.ok).toBe(true);
    expect(names()).toEqual([]);
    await log.propose({ kind: 'stage', version: 4, bundle: bundle(schemaV2) });
    expect(names()).toEqual([['apricot', 'a'], ['fig', 'c']]);
    expect((await log.propose({ kind: 'abort', version: 4 })).result.ok).toBe(true);
    expect(names()).toEqual([]);
    await log.propose({ kind: 'write', version: 3, reads: [], writes: [{ op: 'put', table: 'Item', id: 'd', value: { name: 'kiwi', price: 4 } }], ts: 3 });
    expect(names()).toEqual([]);
  });
});
