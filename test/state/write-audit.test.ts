// The write audit trail of tables declared @table(audit: true), against real LMDB files: apply
// records each write to such a table (who, what, when, at which index and version) and nothing
// of other tables or of refused entries; two replicas given the same log hold the same bytes;
// the chain verifies, and names the record after a byte is changed, a record removed or two
// swapped, and a truncated tail against a head taken before.
import { afterEach, describe, expect, it } from 'vitest';
import { bundleHash } from '../../src/app/bundle.js';
import type { Bundle, LogEntry } from '../../src/model/app-entries.js';
import { verifyWriteAudit, writeAuditHead, writeAuditRecords } from '../../src/state/write-audit.js';
import { removeDir, tempDir } from '../support/dev-server.js';
import { openSingleGroup, type SingleGroup } from '../support/single-group.js';

const schema = `
type Payment @table(audit: true) {
  id: ID @primaryKey
  amount: Float
}
type Note @table {
  id: ID @primaryKey
  text: String
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
  const dir = tempDir('lockstep-write-audit-');
  const group = await openSingleGroup(dir);
  opened.push({ group, dir });
  return group;
}

const log: LogEntry[] = [
  { kind: 'stage', version: 1, bundle: bundle(schema) },
  { kind: 'activate', version: 1, epoch: 0 },
  { kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Payment', id: 'p1', value: { amount: 10 } }, { op: 'put', table: 'Note', id: 'n1', value: { text: 'x' } }], ts: 1_000, actor: 'bot' },
  { kind: 'write', version: 1, reads: [], writes: [{ op: 'patch', table: 'Payment', id: 'p1', value: { amount: 12 } }], ts: 2_000, actor: 'ann' },
  // Refused (wrong version): recorded nowhere.
  { kind: 'write', version: 7, reads: [], writes: [{ op: 'delete', table: 'Payment', id: 'p1' }], ts: 2_500, actor: 'bot' },
  { kind: 'write', version: 1, reads: [], writes: [{ op: 'put', table: 'Payment', id: 'p2', value: { amount: 5 } }], ts: 3_000 },
  { kind: 'write', version: 1, reads: [], writes: [{ op: 'delete', table: 'Payment', id: 'p1' }], ts: 4_000, actor: 'bot' },
];

describe('write audit of @table(audit: true)', () => {
  it('records every write to an audited table, with its actor, and nothing else; replicas agree byte for byte', async () => {
    const a = await replica();
    const b = await replica();
    for (const entry of log) {
      await a.propose(entry);
      await b.propose(entry);
    }
    const records = writeAuditRecords(a.store, { limit: 100 });
    expect(records.map((r) => `${r.seq} ${r.actor} ${r.op} ${r.table}/${String(r.id)} ${JSON.stringify(r.value ?? null)} at ${r.at}`)).toEqual([
      '1 bot put Payment/p1 {"amount":10} at 1000',
      '2 ann patch Payment/p1 {"amount":12} at 2000',
      '3 anonymous put Payment/p2 {"amount":5} at 3000',
      '4 bot delete Payment/p1 null at 4000',
    ]);
    expect(writeAuditRecords(a.store, { limit: 100, actor: 'bot' }).map((r) => r.seq)).toEqual([1, 4]);
    expect(writeAuditRecords(a.store, { limit: 1 }).map((r) => r.seq)).toEqual([4]);
    expect([...b.store.audit.getRange({ start: 1 })].map(({ value }) => value.toString())).toEqual([...a.store.audit.getRange({ start: 1 })].map(({ value }) => value.toString()));
    expect(writeAuditHead(b.store)).toEqual(writeAuditHead(a.store));
    expect(verifyWriteAudit(a.store)).toMatchObject({ ok: true, records: 4 });
  });

  it('names the first record that does not hold after each kind of tampering', async () => {
    const group = await replica();
    for (const entry of log) await group.propose(entry);
    const { store } = group;
    const checkpoint = writeAuditHead(store);
    const original = [...store.audit.getRange({ start: 1 })].map(({ key, value }) => [key, Buffer.from(value)] as const);
    const restore = async (): Promise<void> => {
      await store.root.transaction(() => {
        for (const { key } of [...store.audit.getRange({ start: 1 })]) store.audit.removeSync(key);
        for (const [key, value] of original) store.audit.putSync(key, value);
        store.auditHead.putSync('seq', checkpoint.seq);
        store.auditHead.putSync('hash', checkpoint.hash);
      });
    };
    const tamper = async (change: () => void): Promise<string | undefined> => {
      await store.root.transaction(change);
      const verdict = verifyWriteAudit(store, checkpoint);
      await restore();
      return verdict.ok ? undefined : `${verdict.firstBad?.seq}: ${verdict.firstBad?.problem}`;
    };
    expect(
      await tamper(() => {
        const bytes = Buffer.from(original[1]?.[1] as Buffer);
        bytes[bytes.indexOf('"ann"') + 1] = 'b'.charCodeAt(0); // the actor of record 2
        store.audit.putSync(2, bytes);
      }),
    ).toMatch(/^2: record 2 was changed/);
    expect(await tamper(() => store.audit.removeSync(3))).toMatch(/^3: record 3 is missing/);
    expect(
      await tamper(() => {
        store.audit.putSync(2, original[2]?.[1] as Buffer);
        store.audit.putSync(3, original[1]?.[1] as Buffer);
      }),
    ).toMatch(/^2: record 2 says it is record 3/);
    expect(
      await tamper(() => {
        store.audit.removeSync(4);
        store.auditHead.putSync('seq', 3);
        store.auditHead.putSync('hash', writeAuditRecords(store, { limit: 100 })[2]?.hash ?? '');
      }),
    ).toMatch(/^4: the trail ends at record 3, but the checkpoint holds record 4/);
    expect(verifyWriteAudit(store, checkpoint).ok).toBe(true);
  });
});
