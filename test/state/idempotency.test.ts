// Idempotency-Keys in the app's state machine, against real LMDB files: a keyed entry applies
// once (a later one with the key applies nothing, whatever its reads and version say, and is
// answered with the first answer); the same key with another request is refused; a key is
// forgotten once the entry clock passes its window, the same way on every replica; and a seeded
// random log of keyed retries leaves two replicas with the same bytes and each key applied once.
import { afterEach, describe, expect, it } from 'vitest';
import { bundleHash } from '../../src/app/bundle.js';
import type { ApplyResult, Bundle, IdempotencyClaim, LogEntry, WriteEntry } from '../../src/model/app-entries.js';
import { removeDir, tempDir } from '../support/dev-server.js';
import { seededRandom } from '../support/seeded-random.js';
import { openSingleGroup, type SingleGroup } from '../support/single-group.js';

const schema = `
type Counter @table {
  id: ID @primaryKey
  n: Int
}`;

function bundle(text: string): Bundle {
  const files = { 'schema.graphql': text };
  return { hash: bundleHash(files), files };
}

const opened: { group: SingleGroup; dir: string }[] = [];
afterEach(async () => {
  for (const { group, dir } of opened.splice(0)) {
    await group.close();
    removeDir(dir);
  }
});

async function replica(): Promise<SingleGroup> {
  const dir = tempDir('lockstep-idempotency-');
  const group = await openSingleGroup(dir);
  opened.push({ group, dir });
  await group.propose({ kind: 'stage', version: 1, bundle: bundle(schema) });
  await group.propose({ kind: 'activate', version: 1, epoch: 0 });
  return group;
}

function claim(key: string, fingerprint: string, ts: number, windowMs = 1_000): IdempotencyClaim {
  return { key, fingerprint, untilMs: ts + windowMs, response: { status: 201, version: 1, payload: new TextEncoder().encode(`{"key":"${key}"}`), mediaType: 'application/json', location: `/app/Counter/${key}` } };
}

function write(id: string, n: number, ts: number, idempotency?: IdempotencyClaim, expectedIndex?: number): WriteEntry {
  return {
    kind: 'write',
    version: 1,
    reads: expectedIndex === undefined ? [] : [{ table: 'Counter', id, expectedIndex }],
    writes: [{ op: 'put', table: 'Counter', id, value: { n } }],
    ts,
    ...(idempotency === undefined ? {} : { idempotency }),
  };
}

describe('idempotency keys in apply', () => {
  it('a retried key applies nothing and answers with the first outcome, even when its reads conflict now', async () => {
    const group = await replica();
    const first = await group.propose(write('c1', 1, 1_000, claim('k1', 'f1', 1_000)));
    expect(first.result).toEqual({ ok: true });
    const firstIndex = first.index;
    // The retry read c1 as absent (expectedIndex 0) and another version: no conflict, no version refusal.
    const retry = await group.propose({ ...write('c1', 99, 1_200, claim('k1', 'f1', 1_200), 0), version: 7 });
    expect(retry.result).toMatchObject({ ok: true, replayOf: { index: firstIndex, fingerprint: 'f1', response: { status: 201, location: '/app/Counter/k1' } } });
    expect(group.store.table('Counter').get('c1')).toMatchObject({ i: firstIndex, v: { n: 1 } });
    const reused = await group.propose(write('c1', 5, 1_300, claim('k1', 'other', 1_300)));
    expect(reused.result).toMatchObject({ ok: false, reason: 'key-reused' });
    expect(group.store.table('Counter').get('c1')).toMatchObject({ i: firstIndex, v: { n: 1 } });
  });

  it('forgets a key once the entry clock passes its window, and deletes forgotten keys as writes apply', async () => {
    const group = await replica();
    await group.propose(write('c2', 1, 1_000, claim('k2', 'f', 1_000, 500)));
    expect((await group.propose(write('c2', 2, 1_499, claim('k2', 'f', 1_499, 500)))).result).toMatchObject({ replayOf: {} });
    // At 1_500 the window has passed: the same key is a new request.
    const after = await group.propose(write('c2', 3, 1_500, claim('k2', 'f', 1_500, 500)));
    expect(after.result).toEqual({ ok: true });
    expect(group.store.table('Counter').get('c2')?.v).toEqual({ id: 'c2', n: 3 });
    // Many keys with a short window, then keyed writes far later: the forgotten keys are deleted,
    // at most 8 per keyed write; a write without a key deletes none.
    for (let i = 0; i < 20; i++) await group.propose(write(`d${i}`, i, 2_000, claim(`short-${i}`, 'f', 2_000, 10)));
    const remembered = (): number => [...group.store.idempotency.getKeys({})].length;
    const before = remembered();
    await group.propose(write('e', 0, 10_000));
    expect(remembered()).toBe(before);
    await group.propose(write('e', 0, 10_000, claim('late-0', 'f', 10_000)));
    expect(before + 1 - remembered()).toBe(8);
    for (let i = 1; i < 4; i++) await group.propose(write('e', i, 10_000, claim(`late-${i}`, 'f', 10_000)));
    expect([...group.store.idempotency.getKeys({})].filter((key) => String(key).startsWith('short-'))).toEqual([]);
    expect([...group.store.idempotencyExpiry.getKeys({})].length).toBe(remembered());
  });

  it('refuses a malformed claim and changes nothing', async () => {
    const group = await replica();
    const bad = { ...write('c3', 1, 1_000), idempotency: { key: 5, fingerprint: 'f', untilMs: 'soon', response: {} } } as unknown as LogEntry;
    expect((await group.propose(bad)).result).toMatchObject({ ok: false, reason: 'invalid' });
    expect(group.store.table('Counter').get('c3')).toBeUndefined();
  });

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: a random log of keyed retries applies each key once; two replicas hold the same bytes`, async () => {
      const random = seededRandom(seed);
      const a = await replica();
      const b = await replica();
      // The model: a key applies when it was never applied, or its window (2 s after its last
      // applied entry's clock) has passed by this entry's clock.
      const rememberedUntil = new Map<string, number>();
      let applies = 0;
      let ts = 1_000;
      for (let step = 0; step < 300; step++) {
        ts += Math.floor(random() * 40);
        const key = `k${Math.floor(random() * 60)}`;
        // A fixed request per key: its retries carry the same fingerprint.
        const entry = write(`r-${key}`, Number(key.slice(1)), ts, claim(key, `f-${key}`, ts, 2_000));
        const [ra, rb] = [await a.propose(entry), await b.propose(entry)];
        expect(rb.result).toEqual(ra.result);
        const outcome = ra.result as ApplyResult;
        const expectApplied = (rememberedUntil.get(key) ?? 0) <= ts;
        expect(outcome.ok && outcome.replayOf === undefined, `step ${step} key ${key}`).toBe(expectApplied);
        if (expectApplied) {
          rememberedUntil.set(key, ts + 2_000);
          applies++;
        }
      }
      expect(applies).toBeGreaterThan(60);
      expect(applies).toBeLessThan(300);
      const dump = (group: SingleGroup): string[] => [...group.store.idempotency.getRange({})].map(({ key, value }) => `${String(key)} ${value.index} ${value.untilMs}`);
      expect(dump(b)).toEqual(dump(a));
      expect([...b.store.table('Counter').getRange({})].map(({ key, value }) => `${String(key)} ${value.i}`)).toEqual([...a.store.table('Counter').getRange({})].map(({ key, value }) => `${String(key)} ${value.i}`));
    });
  }
});
