import { afterAll, describe, expect, it } from 'vitest';
import { RaftLog } from '../../src/raft/raft-log.js';
import type { LogIndex, Term } from '../../src/raft/types.js';
import type { HostSabotage } from './host.js';
import { describeFailure, faultProfileOf, runSeed, type SeedResult } from './simulation.js';

/** Seeds once found failing by the soak, fixed in the core since, kept as regressions:
 *  10275: a snapshot install raced an unapplied conf change (348d5f0).
 *  21139, 21571: a forwarded proposal bounced back to the node that first forwarded it and
 *         made step() throw ProposalDroppedError ('raft: a forwarded proposal that bounces back
 *         to its origin is dropped').
 *  101201: a duplicated forwarded readIndex reopened a finished round under the same context
 *         and late acks of the first round released stale reads ('raft: ReadIndex heartbeat
 *         rounds carry a leader-made token'; step by step in read-index-replay.test.ts).
 *  (Found with the simulator's former host; the same seeds now run other schedules on the
 *  production host.) */
const fixedCoreFailureSeeds: readonly number[] = [10275, 21139, 21571, 101201];

/** Host bugs found since the seeds run the production group host, fixed in src/group/ (step
 *  by step in test/group/snapshot-policy.test.ts), both 'snapshot file kept':
 *  45 (and 31 more of seeds 1..60, so the default range covers it): a follower's snapshot
 *     policy discarded the file of the snapshot it had just installed from the leader.
 *  10096 (and 10104, 10944, 10977, 11153): a snapshot installed while the policy's own
 *     compaction was being written lost its file to the policy's clean-up after that write. */
const fixedHostFailureSeeds: readonly number[] = [10096, 10104];

/** Seeds run on every `npm test`: 3- and 5-node clusters with every fault enabled, and every
 *  4th seed the figure8 profile. Keep only seeds that pass; a failing seed found by the soak
 *  goes in knownCoreFailureSeeds until the core is fixed. */
const regressionSeeds: readonly number[] = [...Array.from({ length: 70 }, (_, i) => i + 1), ...fixedCoreFailureSeeds, ...fixedHostFailureSeeds];

/** Seeds the soak found failing because of the core, left out of regressionSeeds until fixed
 *  (replay: npx tsc -p tsconfig.json && node dist/test/sim/soak.js --seed N --verbose). */
export const knownCoreFailureSeeds: readonly number[] = [];

/** Share of the figure8 seeds that must catch the commit-by-counting core. Which seeds catch it
 *  depends on the schedule, and the schedule shifts whenever the host's timing does: 14 of 19
 *  did on the first production-host runs, 11 of 19 once forwarded reads failed fast on a leader
 *  change. In the misses the strike happens, but the next leader already holds the entries the
 *  broken rule committed, so nothing is overwritten. Half keeps the check meaningful: a nemesis
 *  that lost its teeth falls well below it. */
const brokenCommitCaughtShareMin = 1 / 2;
/** Seeds run on a lying disk. Each must catch it at the first message that vouches for state
 *  not on disk; with that check off, at least lyingDiskConsequencesMin must catch what the
 *  messages lead to once crashes lose what they vouched for. */
const lyingDiskSeedsTried = 16;
const lyingDiskConsequencesMin = 4;
/** Bound on seeds tried when looking for the failure stale reads must cause. */
const staleReadSeedsMax = 40;

/** What the run as a whole showed, printed once at the end. */
const summary = {
  seeds: new Set<number>(),
  runs: 0,
  violations: 0,
  commitByCounting: { caught: 0, tried: 0 },
  lyingDisk: { caught: 0, tried: 0, consequencesCaught: 0, consequences: new Map<string, number>() },
  staleReads: { caught: 0, tried: 0 },
};

afterAll(() => {
  const { lyingDisk } = summary;
  const consequences = [...lyingDisk.consequences].map(([property, count]) => `${property} x${count}`).join(', ');
  console.log(
    `sim: ${summary.seeds.size} seeds (${summary.runs} runs) on the production host, ${summary.violations} violations; planted bugs caught: ` +
      `commit-by-counting ${summary.commitByCounting.caught}/${summary.commitByCounting.tried} figure8 seeds, ` +
      `lying-disk ${lyingDisk.caught}/${lyingDisk.tried} seeds (durable before sent; without that check ` +
      `${lyingDisk.consequencesCaught}/${lyingDisk.tried} by the consequences: ${consequences || 'none'}), ` +
      `stale-reads ${summary.staleReads.caught}/${summary.staleReads.tried} seeds (it stops at the first)`,
  );
});

async function run(seed: number, sabotage: HostSabotage = 'none'): Promise<SeedResult> {
  const result = await runSeed({ seed, sabotage });
  if (sabotage === 'none') {
    summary.seeds.add(seed);
    summary.runs++;
    if (!result.ok) summary.violations++;
  }
  return result;
}

function failureText(result: SeedResult): string {
  if (result.ok) return 'ok';
  return `${describeFailure(result)}\n  last trace lines:\n${result.failure!.traceTail.slice(-30).map((line) => `    ${line}`).join('\n')}`;
}

describe('deterministic simulation of the production group host', () => {
  it('keeps every safety invariant and a linearizable history on the regression seeds', async () => {
    let figure8Seeds = 0;
    let figure8SeedsStruck = 0;
    const failures: SeedResult[] = [];
    for (const seed of regressionSeeds) {
      const result = await run(seed);
      if (!result.ok) failures.push(result);
      if (faultProfileOf(seed) !== 'figure8') continue;
      figure8Seeds++;
      if (result.stats.figure8Strikes > 0) figure8SeedsStruck++;
    }
    // Every failing seed is listed (not only the first), so a broken host shows how widely.
    const failed = `${failures.length} of ${regressionSeeds.length} seeds failed: ${failures.map((result) => result.seed).join(' ')}`;
    expect(failures.length === 0 ? 'ok' : `${failed}\nfirst: ${failureText(failures[0]!)}`).toBe('ok');
    // The figure8 profile only tests the commit rule if it reaches the danger window (a majority
    // holding old-term entries, none of the new term) and strikes there.
    expect(figure8Seeds).toBeGreaterThanOrEqual(10);
    expect(figure8SeedsStruck).toBeGreaterThanOrEqual(figure8Seeds / 2);
    // CPU-bound and deterministic (about 26 s alone on this machine): the bound guards against a
    // hang, not slowness, and the suite's process tests share the two cores with it.
  }, 180_000);

  it('exercises what it claims to: faults, membership changes, snapshots, reads and writes', async () => {
    const totals = {
      crashes: 0,
      partitions: 0,
      pauses: 0,
      confChangesApplied: 0,
      compactions: 0,
      snapshotsInstalled: 0,
      transfers: 0,
      operations: 0,
      unknownOutcomes: 0,
      requestLegs: 0,
    };
    let writesInFlightMax = 0;
    for (const seed of [101, 102, 103, 104]) {
      const result = await run(seed);
      expect(failureText(result)).toBe('ok');
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.stats[key];
      writesInFlightMax = Math.max(writesInFlightMax, result.stats.writesInFlightMax);
    }
    expect(totals.crashes).toBeGreaterThan(0);
    expect(totals.partitions).toBeGreaterThan(0);
    expect(totals.pauses).toBeGreaterThan(0);
    expect(totals.unknownOutcomes).toBeGreaterThan(0);
    expect(totals.confChangesApplied).toBeGreaterThan(0);
    expect(totals.compactions).toBeGreaterThan(0);
    expect(totals.snapshotsInstalled).toBeGreaterThan(0);
    expect(totals.transfers).toBeGreaterThan(0);
    expect(totals.operations).toBeGreaterThan(1_000);
    // The production host's own paths: forwarded ReadIndex calls and snapshot streams between
    // nodes, and several writes in flight at once in the Ready loop.
    expect(totals.requestLegs).toBeGreaterThan(0);
    expect(writesInFlightMax).toBeGreaterThan(2);
  });

  it('replays a seed exactly', async () => {
    const first = await run(7);
    const second = await run(7);
    const { wallMs: _a, checkerMs: _b, ...firstStats } = first.stats;
    const { wallMs: _c, checkerMs: _d, ...secondStats } = second.stats;
    expect(secondStats).toEqual(firstStats);
  });

  // A simulator that cannot fail proves nothing: plant bugs around the host and expect verdicts.
  it('catches a node that serves reads from local state without ReadIndex', async () => {
    let caught: SeedResult | undefined;
    for (let seed = 1; seed <= staleReadSeedsMax && caught === undefined; seed++) {
      const result = await run(seed, 'staleReads');
      summary.staleReads.tried++;
      if (!result.ok) caught = result;
    }
    summary.staleReads.caught = caught === undefined ? 0 : 1;
    expect(caught?.failure?.property).toBe('linearizability');
  });

  // The Ready loop holds a Ready's messages until its write is durable. A disk that acknowledges
  // writes before they are durable makes it send votes and acknowledgements for state that a
  // crash loses: the host then behaves like one that sends before persisting.
  it('catches a lying disk: messages that vouch for writes a crash loses', async () => {
    const { lyingDisk } = summary;
    for (let seed = 1; seed <= lyingDiskSeedsTried; seed++) {
      lyingDisk.tried++;
      const result = await runSeed({ seed, sabotage: 'lyingDisk' });
      expect(result.failure?.property, `seed ${seed}`).toBe('durable before sent');
      lyingDisk.caught++;
      // What the same messages do when nothing looks at them as they leave: crashes lose
      // acknowledged entries and granted votes, and the rest of the checker must notice.
      const blind = await runSeed({ seed, sabotage: 'lyingDisk', checkSentMessages: false });
      if (blind.ok) continue;
      lyingDisk.consequencesCaught++;
      const property = blind.failure!.property;
      lyingDisk.consequences.set(property, (lyingDisk.consequences.get(property) ?? 0) + 1);
    }
    expect(lyingDisk.consequencesCaught).toBeGreaterThanOrEqual(lyingDiskConsequencesMin);
  });

  // The issue's own example of a broken safety rule: commit an entry of an older term because a
  // majority holds it (Raft paper Figure 8). The core is broken in this test process only, by
  // swapping RaftLog's commit rule; src/raft stays untouched.
  it('catches a core that commits an old-term entry by counting replicas (Figure 8)', async () => {
    // Every figure8 seed of the default set must catch it (they strike in their first rounds,
    // so this costs little).
    const figure8Seeds = regressionSeeds.filter((seed) => faultProfileOf(seed) === 'figure8');
    const correctRule = RaftLog.prototype.maybeCommit;
    RaftLog.prototype.maybeCommit = function commitByCounting(this: RaftLog, quorumIndex: LogIndex, _currentTerm: Term): boolean {
      if (quorumIndex <= this.committed) return false;
      this.commitTo(quorumIndex);
      return true;
    };
    const failures: SeedResult[] = [];
    try {
      for (const seed of figure8Seeds) {
        const result = await runSeed({ seed });
        summary.commitByCounting.tried++;
        if (!result.ok) failures.push(result);
      }
    } finally {
      RaftLog.prototype.maybeCommit = correctRule;
    }
    summary.commitByCounting.caught = failures.length;
    const safetyProperties = new Set(['leader completeness', 'state machine safety', 'log matching']);
    // Not every round can overwrite what the broken rule committed (the entries it committed may
    // be the ones the next leader has too), so most seeds, not all, catch it.
    expect(failures.length, 'figure8 seeds that caught the broken rule').toBeGreaterThanOrEqual(figure8Seeds.length * brokenCommitCaughtShareMin);
    for (const failure of failures) expect(safetyProperties, describeFailure(failure)).toContain(failure.failure!.property);
  });
});
