import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/raft/inflights.js';
import { Progress } from '../../src/raft/progress.js';

describe('Inflights', () => {
  it('is full at its message count and frees acknowledged messages in order, across wrap-around', () => {
    const inflights = new Inflights(4, 0);
    for (let index = 1; index <= 4; index++) inflights.add(index, 10);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(2);
    expect(inflights.size()).toBe(2);
    expect(inflights.full()).toBe(false);
    inflights.add(5, 10);
    inflights.add(6, 10); // wraps around the ring
    expect(inflights.full()).toBe(true);
    inflights.freeLE(5);
    expect(inflights.size()).toBe(1);
    inflights.freeLE(1); // stale acknowledgement
    expect(inflights.size()).toBe(1);
    inflights.freeLE(100);
    expect(inflights.size()).toBe(0);
    expect(inflights.sizeBytes()).toBe(0);
  });
  it('is full once its byte budget is used', () => {
    const inflights = new Inflights(100, 250);
    inflights.add(1, 100);
    inflights.add(2, 100);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 100);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(1);
    expect(inflights.full()).toBe(false);
    expect(() => new Inflights(1, 0).add(1, 0)).not.toThrow();
  });
  it('refuses to overflow', () => {
    const inflights = new Inflights(1, 0);
    inflights.add(1, 0);
    expect(() => inflights.add(2, 0)).toThrow(/full/);
  });
});

function newProgress(match: number, next: number): Progress {
  return new Progress({ match, next, inflights: new Inflights(2, 0), isLearner: false, recentActive: true });
}

describe('Progress', () => {
  it('raises match only forward, and next with it', () => {
    const progress = newProgress(3, 5);
    expect(progress.maybeUpdate(2)).toBe(false);
    expect(progress.match).toBe(3);
    expect(progress.maybeUpdate(6)).toBe(true);
    expect([progress.match, progress.next]).toEqual([6, 7]);
  });
  it('in probe state sends one message at a time and backs off using the hint', () => {
    const progress = newProgress(0, 10);
    progress.sentEntries(3, 30);
    expect(progress.isPaused()).toBe(true);
    expect(progress.maybeDecrTo(5, 3)).toBe(false); // stale: not the probe we sent
    expect(progress.maybeDecrTo(9, 3)).toBe(true);
    expect(progress.next).toBe(4);
    expect(progress.isPaused()).toBe(false);
  });
  it('in replicate state pipelines up to the inflight bound and restarts from match on rejection', () => {
    const progress = newProgress(5, 6);
    progress.becomeReplicate();
    progress.sentEntries(2, 20);
    expect(progress.next).toBe(8);
    expect(progress.isPaused()).toBe(false);
    progress.sentEntries(2, 20);
    expect(progress.isPaused()).toBe(true);
    expect(progress.maybeDecrTo(4, 4)).toBe(false); // already matched: stale
    expect(progress.maybeDecrTo(7, 6)).toBe(true);
    expect(progress.next).toBe(6);
  });
  it('leaves snapshot state probing after the snapshot index', () => {
    const progress = newProgress(2, 3);
    progress.becomeSnapshot(10);
    expect(progress.isPaused()).toBe(true);
    progress.becomeProbe();
    expect(progress.next).toBe(11);
    expect(progress.pendingSnapshot).toBe(0);
  });
});
