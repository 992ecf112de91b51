// Compact builders for hand-written key-value histories: read('x', 'a', 0, 10, 'c1') is a read of
// x by client c1 that was called at 0, returned at 10 and saw 'a'.

import { UNKNOWN, type KvOperation, type KvValue } from '../../src/testing/linearizability/index.js';

export type Client = string | number;

export function read(key: string, value: KvValue, callTime: number, returnTime: number, clientId: Client = 'c'): KvOperation {
  return { clientId, callTime, returnTime, input: { type: 'read', key }, output: { type: 'read', value } };
}

export function write(key: string, value: string, callTime: number, returnTime: number, clientId: Client = 'c'): KvOperation {
  return { clientId, callTime, returnTime, input: { type: 'write', key, value }, output: { type: 'write' } };
}

export function cas(
  key: string,
  expected: KvValue,
  value: string,
  ok: boolean,
  callTime: number,
  returnTime: number,
  clientId: Client = 'c',
): KvOperation {
  return { clientId, callTime, returnTime, input: { type: 'cas', key, expected, value }, output: { type: 'cas', ok } };
}

/** An operation whose client timed out: it may or may not have taken effect. */
export function timedOut(operation: KvOperation): KvOperation {
  return { ...operation, returnTime: Number.POSITIVE_INFINITY, output: UNKNOWN };
}
