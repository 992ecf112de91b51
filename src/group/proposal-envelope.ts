// How a group's entries travel inside Raft entries: the codec's bytes behind the key of the
// node and request that proposed it, so that the proposer recognises its committed entry and
// answers its waiting request. Empty data is a new leader's empty entry.
//
// Layout: [keyLength: u8][key: utf-8][payload]. The key is "<nodeId>/<incarnation>/<sequence>":
// the incarnation is random per process start, so an entry proposed before a restart can never
// be matched with a request made after it.
import { check } from './errors.js';

/** Keys are short: a node id (64 bytes at most) and two numbers. */
const keyBytesMax = 255;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function wrapProposal(key: string, payload: Uint8Array): Uint8Array {
  const keyBytes = encoder.encode(key);
  check(keyBytes.byteLength > 0 && keyBytes.byteLength <= keyBytesMax, `proposal key '${key}' must be 1..${keyBytesMax} bytes`);
  const data = new Uint8Array(1 + keyBytes.byteLength + payload.byteLength);
  data[0] = keyBytes.byteLength;
  data.set(keyBytes, 1);
  data.set(payload, 1 + keyBytes.byteLength);
  return data;
}

export function unwrapProposal(data: Uint8Array): { readonly key: string; readonly payload: Uint8Array } {
  const keyLength = data[0] ?? 0;
  check(keyLength > 0 && data.byteLength >= 1 + keyLength, `raft entry of ${data.byteLength} bytes does not hold a proposal`);
  return { key: decoder.decode(data.subarray(1, 1 + keyLength)), payload: data.subarray(1 + keyLength) };
}
