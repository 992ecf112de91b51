import { describe, expect, it } from 'vitest';
import { RaftLog } from '../../src/raft/raft-log.js';
import type { LogIndex, Term } from '../../src/raft/types.js';
import { describeFailure, faultProfileOf, runSeed, type SeedResult } from './simulation.js';

/** Seeds once found failing by the soak, fixed in the core since, kept as regressions:
 *  10275: a snapshot install raced an unapplied conf change (348d5f0).
 *  21139, 21571: a forwarded proposal bounced back to the node that first forwarded it and
 *         made step() throw ProposalDroppedError ('raft: a forwarded proposal that bounces back
 *         to its origin is dropped').
 *  101201: a duplicated forwarded readIndex reopened a finished round under the same context
 *         and late acks of the first round released stale reads ('raft: ReadIndex heartbeat
 *         rounds carry a leader-made token'; step by step in read-index-replay.test.ts). */
const fixedCoreFailureSeeds: readonly number[] = [10275, 21139, 21571, 101201];

/** Seeds run on every `npm test`: 3- and 5-node clusters with every fault enabled, and every
 *  4th seed the figure8 profile. Keep only seeds that pass; a failing seed found by the soak
 *  goes in knownCoreFailureSeeds until the core is fixed. */
const regressionSeeds: readonly number[] = [...Array.from({ length: 70 }, (_, i) => i + 1), ...fixedCoreFailureSeeds];

/** Seeds the soak found failing because of the core, left out of regressionSeeds until fixed
 *  (replay: npx tsc -p tsconfig.json && node dist/test/sim/soak.js --seed N --verbose). */
export const knownCoreFailureSeeds: readonly number[] = [];

function failureText(result: SeedResult): string {
  if (result.ok) return 'ok';
  return `${describeFailure(result)}\n  last trace lines:\n${result.failure!.traceTail.slice(-30).map((line) => `    ${line}`).join('\n')}`;
}

describe('deterministic raft simulation', () => {
  it('keeps every safety invariant and a linearizable history on the regression seeds', () => {
    let figure8Seeds = 0;
    let figure8SeedsStruck = 0;
    const failures: SeedResult[] = [];
    for (const seed of regressionSeeds) {
      const result = runSeed({ seed });
      if (!result.ok) failures.push(result);
      if (faultProfileOf(seed) !== 'figure8') continue;
      figure8Seeds++;
      if (result.stats.figure8Strikes > 0) figure8SeedsStruck++;
    }
    // Every failing seed is listed (not only the first), so a broken core shows how widely.
    const summary = `${failures.length} of ${regressionSeeds.length} seeds failed: ${failures.map((result) => result.seed).join(' ')}`;
    expect(failures.length === 0 ? 'ok' : `${summary}\nfirst: ${failureText(failures[0]!)}`).toBe('ok');
    // The figure8 profile only tests the commit rule if it reaches the danger window (a majority
    // holding old-term entries, none of the new term) and strikes there.
    expect(figure8Seeds).toBeGreaterThanOrEqual(10);
    expect(figure8SeedsStruck).toBeGreaterThanOrEqual(figure8Seeds / 2);
  });

  it('exercises what it claims to: faults, membership changes, snapshots, reads and writes', () => {
    const totals = { crashes: 0, partitions: 0, pauses: 0, confChangesApplied: 0, snapshotsInstalled: 0, transfers: 0, operations: 0, unknownOutcomes: 0 };
    for (const seed of [101, 102, 103, 104]) {
      const result = runSeed({ seed });
      expect(failureText(result)).toBe('ok');
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.stats[key];
    }
    expect(totals.crashes).toBeGreaterThan(0);
    expect(totals.partitions).toBeGreaterThan(0);
    expect(totals.pauses).toBeGreaterThan(0);
    expect(totals.unknownOutcomes).toBeGreaterThan(0);
    expect(totals.confChangesApplied).toBeGreaterThan(0);
    expect(totals.snapshotsInstalled).toBeGreaterThan(0);
    expect(totals.transfers).toBeGreaterThan(0);
    expect(totals.operations).toBeGreaterThan(1_000);
  });

  it('replays a seed exactly', () => {
    const first = runSeed({ seed: 7 });
    const second = runSeed({ seed: 7 });
    const { wallMs: _a, checkerMs: _b, ...firstStats } = first.stats;
    const { wallMs: _c, checkerMs: _d, ...secondStats } = second.stats;
    expect(secondStats).toEqual(firstStats);
  });

  // A simulator that cannot fail proves nothing: break the host on purpose and expect a verdict.
  it('catches a host that serves reads from local state without ReadIndex', () => {
    expect(firstFailure({ sabotage: 'staleReads' })?.failure?.property).toBe('linearizability');
  });

  it('catches a host that sends messages before persisting the Ready', () => {
    expect(firstFailure({ sabotage: 'sendBeforePersist' })).toBeDefined();
  });

  // The issue's own example of a broken safety rule: commit an entry of an older term because a
  // majority holds it (Raft paper Figure 8). The core is broken in this test process only, by
  // swapping RaftLog's commit rule; src/raft stays untouched.
  it('catches a core that commits an old-term entry by counting replicas (Figure 8)', () => {
    const figure8Seeds = regressionSeeds.filter((seed) => faultProfileOf(seed) === 'figure8').slice(0, brokenCommitSeedsTried);
    const correctRule = RaftLog.prototype.maybeCommit;
    RaftLog.prototype.maybeCommit = function commitByCounting(this: RaftLog, quorumIndex: LogIndex, _currentTerm: Term): boolean {
      if (quorumIndex <= this.committed) return false;
      this.commitTo(quorumIndex);
      return true;
    };
    let failures: SeedResult[];
    try {
      failures = figure8Seeds.map((seed) => runSeed({ seed })).filter((result) => !result.ok);
    } finally {
      RaftLog.prototype.maybeCommit = correctRule;
    }
    const safetyProperties = new Set(['leader completeness', 'state machine safety', 'log matching']);
    expect(failures.length, 'figure8 seeds that caught the broken rule').toBe(figure8Seeds.length);
    for (const failure of failures) expect(safetyProperties, describeFailure(failure)).toContain(failure.failure!.property);
  });
});

/** Figure8 seeds run with the broken commit rule; each one must catch it. */
const brokenCommitSeedsTried = 6;

/** Bound on seeds tried when looking for the failure a sabotaged host must cause. */
const sabotageSeedsMax = 40;

function firstFailure(options: { sabotage: 'staleReads' | 'sendBeforePersist' }): SeedResult | undefined {
  for (let seed = 1; seed <= sabotageSeedsMax; seed++) {
    const result = runSeed({ seed, ...options });
    if (!result.ok) return result;
  }
  return undefined;
}
