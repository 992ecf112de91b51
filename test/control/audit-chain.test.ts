// The audit chain's rules without processes: records chain by the hash of their stored bytes,
// and verification names the first record that does not hold.
import { describe, expect, it } from 'vitest';
import { auditRecordOf, emptyHead, verifyChain, type ChainHead } from '../../src/control/audit.js';
import type { ControlEntry } from '../../src/control/commands.js';

function chainOf(count: number): { stored: { key: number; bytes: Buffer }[]; head: ChainHead } {
  let head = emptyHead;
  const stored: { key: number; bytes: Buffer }[] = [];
  for (let i = 1; i <= count; i++) {
    const entry: ControlEntry = { at: 1_000 + i, actor: 'operator', command: { op: 'node.drain', id: `n${i}`, drain: 'draining' } };
    const audit = auditRecordOf(10 + i, entry, i % 3 === 0 ? { ok: false, reason: 'no such node', revision: 1 } : { ok: true, revision: 1 }, head);
    stored.push({ key: audit.record.seq, bytes: audit.bytes });
    head = { seq: audit.record.seq, hash: audit.hash };
  }
  return { stored, head };
}

/** Flips one bit of a letter of the actor's name: the record still parses, its hash changes. */
function flipActor(item: { bytes: Buffer }): void {
  const at = item.bytes.indexOf('"actor":"') + 9;
  item.bytes[at] = (item.bytes[at] as number) ^ 1;
}

describe('audit chain', () => {
  it('holds as written, and against a checkpoint of any of its records', () => {
    const { stored, head } = chainOf(6);
    expect(verifyChain(stored, head)).toEqual({ ok: true, records: 6, head });
    const three = chainOf(3).head;
    expect(verifyChain(stored, head, three).ok).toBe(true);
    const record = JSON.parse(stored[2]?.bytes.toString() ?? '') as { outcome: string; reason: string; target: string };
    expect(record).toMatchObject({ outcome: 'refused', reason: 'no such node', target: 'node:n3' });
  });

  it('names the first record that was changed, removed, moved or cut off', () => {
    const { stored, head } = chainOf(6);
    const flipped = stored.map((item) => ({ ...item, bytes: Buffer.from(item.bytes) }));
    flipActor(flipped[1] as { bytes: Buffer });
    expect(verifyChain(flipped, head).firstBad?.seq).toBe(2);
    const lastFlipped = stored.map((item) => ({ ...item, bytes: Buffer.from(item.bytes) }));
    flipActor(lastFlipped[5] as { bytes: Buffer });
    expect(verifyChain(lastFlipped, head).firstBad).toEqual({ seq: 6, problem: expect.stringMatching(/^record 6 was changed/) as string });
    expect(verifyChain(stored.filter((item) => item.key !== 4), head).firstBad?.problem).toMatch(/^record 4 is missing/);
    const swapped = [stored[0], stored[2], stored[1], ...stored.slice(3)].map((item, i) => ({ key: i + 1, bytes: (item as { bytes: Buffer }).bytes }));
    expect(verifyChain(swapped, head).firstBad?.problem).toMatch(/^record 2 says it is record 3/);
    const cut = chainOf(4);
    expect(verifyChain(cut.stored, cut.head).ok).toBe(true); // consistent on its own...
    expect(verifyChain(cut.stored, cut.head, head).firstBad?.problem).toMatch(/its tail was truncated/); // ...but not with the checkpoint
    expect(verifyChain(stored.slice(0, 4), head).firstBad?.problem).toMatch(/records were removed/);
    const unreadable = stored.map((item) => ({ ...item, bytes: Buffer.from(item.bytes) }));
    (unreadable[0] as { bytes: Buffer }).bytes[0] = 0x20; // the opening brace
    expect(verifyChain(unreadable, head).firstBad).toEqual({ seq: 1, problem: 'record 1 is not readable: its stored bytes were changed' });
  });
});
