import { describe, expect, it } from 'vitest';
import { longestNoSuccess, StretchesByKind } from './availability.js';

describe('longestNoSuccess', () => {
  const window = { injectedMs: 100, settledMs: 500 };

  it('counts from the injection to the first success after it', () => {
    expect(longestNoSuccess([50, 90, 900, 950], window)).toEqual({ longestMs: 800, endedBy: 'success' });
  });

  it('takes the longest gap between successes while the fault lasts, up to the first success after it settled', () => {
    expect(longestNoSuccess([110, 120, 400, 450, 520, 2_000], window)).toEqual({ longestMs: 280, endedBy: 'success' });
  });

  it('says when no success came after the window (a lower bound)', () => {
    expect(longestNoSuccess([150], window)).toEqual({ longestMs: 350, endedBy: 'unmeasured' });
    expect(longestNoSuccess([], window)).toEqual({ longestMs: 400, endedBy: 'unmeasured' });
  });

  it('ends at the next fault of a chain when that one starts before any success', () => {
    expect(longestNoSuccess([150, 3_000], window, 600)).toEqual({ longestMs: 450, endedBy: 'nextFault' });
    expect(longestNoSuccess([150, 550, 3_000], window, 600)).toEqual({ longestMs: 400, endedBy: 'success' });
  });
});

describe('StretchesByKind', () => {
  it('summarises per kind with the median, the max and its round, and marks stretches over the target', () => {
    const stretches = new StretchesByKind();
    stretches.add('pauseLeader', { longestMs: 700, endedBy: 'success' }, 'round 1');
    stretches.add('pauseLeader', { longestMs: 1_600, endedBy: 'success' }, 'round 2');
    stretches.add('pauseLeader', { longestMs: 900, endedBy: 'success' }, 'round 3');
    stretches.add('killFollowerRestart', { longestMs: 40, endedBy: 'nextFault' }, 'round 2');
    expect(stretches.describe(1_500)).toEqual([
      '  killFollowerRestart: 1 faults, longest no-success stretch median 40 ms, max 40 ms (round 2), 1 cut short by the next fault or the end (lower bounds)',
      '  pauseLeader: 3 faults, longest no-success stretch median 900 ms, max 1600 ms (round 2) OVER 1500 ms',
    ]);
  });
});
