// Small helpers shared by the core's modules: assertions, entry sizes, byte keys.
import type { Entry } from './types.js';

/** A broken invariant inside the core: a programmer error, never an operating error. */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);
export const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]);

/** Bytes an entry counts for in every size bound (messages, inflight, uncommitted, Ready):
 *  the payload only, so that bounds mean the same thing whatever the wire encoding is. */
export function entryPayloadBytes(entry: Entry): number {
  return entry.data.byteLength;
}

export function payloadsBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entry.data.byteLength;
  return total;
}

/**
 * The longest prefix of `entries` whose payload fits in `maxBytes`, but always at least one
 * entry: a single entry larger than the bound must still make progress.
 * Returns the same array when nothing is cut, so callers do not pay for a copy.
 */
export function limitSize<T extends readonly Entry[]>(entries: T, maxBytes: number): T | Entry[] {
  if (entries.length === 0) return entries;
  let size = entries[0]!.data.byteLength;
  let limit = 1;
  for (; limit < entries.length; limit++) {
    size += entries[limit]!.data.byteLength;
    if (size > maxBytes) break;
  }
  return limit === entries.length ? entries : entries.slice(0, limit);
}

const HEX_DIGITS = '0123456789abcdef';

/** A map key for a byte string (ReadIndex contexts). */
export function bytesKey(bytes: Uint8Array): string {
  let key = '';
  for (const byte of bytes) key += HEX_DIGITS[byte >> 4]! + HEX_DIGITS[byte & 15]!;
  return key;
}

export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
