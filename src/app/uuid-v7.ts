// Generated record ids: UUID version 7 (RFC 9562), a millisecond timestamp followed by random
// bits. Ids made one after another sort one after another, so a table filling up through POST
// appends near the end of its B-tree instead of dirtying a random page per insert, which keeps
// each synced commit small. The random part (74 bits) keeps them unguessable and unique.
import { randomFillSync } from 'node:crypto';

const hex = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
/** Random bytes drawn at once and handed out 10 per id, so most ids cost no system call. */
const poolBytes = 4096;
const pool = new Uint8Array(poolBytes);
let poolOffset = poolBytes;

export function uuidV7(nowMs: number = Date.now()): string {
  if (poolOffset + 10 > poolBytes) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = new Uint8Array(16);
  // 48-bit big-endian Unix milliseconds.
  let ms = nowMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes.set(pool.subarray(poolOffset, poolOffset + 10), 6);
  poolOffset += 10;
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70; // version 7
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80; // variant 10
  let out = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += '-';
    out += hex[bytes[i] as number];
  }
  return out;
}
