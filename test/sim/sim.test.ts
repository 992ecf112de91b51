import { describe, expect, it } from 'vitest';
import { describeFailure, runSeed, type SeedResult } from './simulation.js';

/** Seeds run on every `npm test`: 3- and 5-node clusters with every fault enabled. Keep only
 *  seeds that pass; a failing seed found by the soak goes in the report until the core is fixed. */
const regressionSeeds: readonly number[] = Array.from({ length: 70 }, (_, i) => i + 1);

/** Seeds the soak found failing because of the core, left out of regressionSeeds until fixed
 *  (replay: npx tsc -p tsconfig.json && node dist/test/sim/soak.js --seed N --verbose):
 *  21139, 21571: a forwarded proposal bounces back to the node that first forwarded it (A
 *         forwards to B, whose leader is still A); its `from` is A, so A's core takes it for a
 *         local proposal and throws ProposalDroppedError out of step() ('no leader', as a
 *         follower or candidate) instead of dropping it silently.
 *  (10275, the snapshot-versus-unapplied-conf-change race, was fixed in the core by 348d5f0.) */
export const knownCoreFailureSeeds: readonly number[] = [21139, 21571];

function failureText(result: SeedResult): string {
  if (result.ok) return 'ok';
  return `${describeFailure(result)}\n  last trace lines:\n${result.failure!.traceTail.slice(-30).map((line) => `    ${line}`).join('\n')}`;
}

describe('deterministic raft simulation', () => {
  it('keeps every safety invariant and a linearizable history on the regression seeds', () => {
    for (const seed of regressionSeeds) {
      const result = runSeed({ seed });
      expect(failureText(result), `seed ${seed}`).toBe('ok');
    }
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
});

/** Bound on seeds tried when looking for the failure a sabotaged host must cause. */
const sabotageSeedsMax = 40;

function firstFailure(options: { sabotage: 'staleReads' | 'sendBeforePersist' }): SeedResult | undefined {
  for (let seed = 1; seed <= sabotageSeedsMax; seed++) {
    const result = runSeed({ seed, ...options });
    if (!result.ok) return result;
  }
  return undefined;
}
