import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { CodecError, decodeMessage, encodeMessage } from '../../src/cluster/codec.js';
import { crc32 } from '../../src/cluster/codec-crc32.js';
import { reconnectDelayMs } from '../../src/cluster/transport-peer.js';
import { reconnectDelayMsMax, reconnectDelayMsMin, reconnectJitterRatio } from '../../src/cluster/transport-limits.js';
import { confStateOf } from '../../src/raft/index.js';
import type { Message } from '../../src/raft/types.js';

const base: Message = {
  type: 'app', from: 'n1', to: 'n2', term: 3, logTerm: 2, index: 10, commit: 9, reject: false, rejectHint: 0,
  entries: [
    { term: 3, index: 11, type: 'normal', data: new Uint8Array([1, 2, 3]) },
    { term: 3, index: 12, type: 'confChange', data: new Uint8Array([]) },
  ],
};

describe('raft message codec', () => {
  it('round-trips every field, with bytes as plain Uint8Array', () => {
    const full: Message = {
      ...base,
      type: 'snap',
      rejectLogTerm: 2,
      context: new Uint8Array([9, 9]),
      snapshot: { metadata: { index: 8, term: 2, confState: confStateOf(['n1', 'n2'], ['n3']) }, data: new Uint8Array([7]) },
    };
    for (const message of [base, full]) {
      const decoded = decodeMessage(encodeMessage(message));
      expect(decoded).toEqual(message);
      expect(Object.getPrototypeOf(decoded.entries[0]!.data)).toBe(Uint8Array.prototype);
    }
    expect('snapshot' in decodeMessage(encodeMessage(base))).toBe(false);
  });

  it('refuses malformed input instead of handing it to the core', () => {
    const packr = new Packr({ useRecords: false });
    const wire = { ...base, entries: base.entries.map((e) => ({ ...e })) };
    const cases: unknown[] = [
      { ...wire, type: 'bogus' },
      { ...wire, term: -1 },
      { ...wire, index: 1.5 },
      { ...wire, from: 7 },
      { ...wire, entries: [{ term: 1, index: 1, type: 'normal', data: 'text' }] },
      { ...wire, reject: 'no' },
      [1, 2, 3],
    ];
    for (const bad of cases) expect(() => decodeMessage(packr.pack(bad))).toThrow(CodecError);
    expect(() => decodeMessage(new Uint8Array([0xc1]))).toThrow(CodecError);
  });
});

describe('crc32 and backoff', () => {
  it('computes the IEEE CRC-32 check value, also over split input', () => {
    const bytes = new TextEncoder().encode('123456789');
    expect(crc32(bytes)).toBe(0xcbf43926);
    expect(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4)))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('backs off exponentially within its bounds, with jitter', () => {
    const low = () => 0;
    const high = () => 0.999999;
    expect(reconnectDelayMs(0, low)).toBe(Math.round(reconnectDelayMsMin * (1 - reconnectJitterRatio)));
    expect(reconnectDelayMs(1, () => 0.5)).toBe(reconnectDelayMsMin * 2);
    for (const attempt of [10, 100, 10_000]) {
      expect(reconnectDelayMs(attempt, high)).toBeLessThanOrEqual(Math.round(reconnectDelayMsMax * (1 + reconnectJitterRatio)));
      expect(reconnectDelayMs(attempt, low)).toBeGreaterThanOrEqual(Math.round(reconnectDelayMsMax * (1 - reconnectJitterRatio)));
    }
  });
});
