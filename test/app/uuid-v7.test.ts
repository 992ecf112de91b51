// Generated ids are RFC 9562 version 7 UUIDs: well-formed, unique, and ordered by creation time.
import { describe, expect, it } from 'vitest';
import { uuidV7 } from '../../src/app/uuid-v7.js';

describe('uuidV7', () => {
  it('is a version 7, variant 10 UUID carrying its millisecond timestamp', () => {
    const id = uuidV7(0x0189_abcd_ef01);
    expect(id).toMatch(/^0189abcd-ef01-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('sorts by creation time, and 100,000 ids are distinct', () => {
    const ids: string[] = [];
    for (let i = 0; i < 100_000; i++) ids.push(uuidV7(1_700_000_000_000 + Math.floor(i / 100)));
    expect(new Set(ids).size).toBe(ids.length);
    const firstOfEachMs = ids.filter((_, i) => i % 100 === 0);
    expect([...firstOfEachMs].sort()).toEqual(firstOfEachMs);
  });
});
