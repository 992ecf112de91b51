// The mixed-version checker, short: five nodes in three regions under the simulated WAN matrix,
// reads and writes through every node and a WebSocket subscriber on each, while the app goes
// v1 -> v2 -> rollback to v1 -> v3 (a failing check: aborted) -> v4 (over the error rate:
// rolled back). No answer may come from a version other than the one active at its index, no
// request may fail except v4's own errors, and no subscriber may miss an event or see one out
// of order. bench/mixed-version.ts runs the same with longer phases and a heavier load (here
// the load is light: another test file runs beside this one on the two cores).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, nodesOf } from '../support/fleet.js';
import { mixedVersionTable, runMixedVersion } from '../support/mixed-version.js';

describe('mixed-version checker under load', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({ nodes: nodesOf('eu:2,us:2,ap:1'), nodeArgs: ['--simulate-wan', 'default'] });
  }, 120_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('four rollouts: no mismatched version, no failed request, no subscriber gap', async () => {
    const report = await runMixedVersion(fleet, { phaseMs: 1_500, workersPerNode: 1, pauseMs: 10, pollEveryMs: 20, regions: 'eu,us,ap' });
    const table = mixedVersionTable(report);
    process.stdout.write(table);
    expect(report.rollouts.map((row) => row.outcome)).toEqual(['activated', 'activated', 'aborted', 'rolled back']);
    for (const row of report.rollouts) {
      expect(row.mismatched, `${row.name}: ${row.mismatchSamples.join('\n')}`).toBe(0);
      expect(row.failed, `${row.name}: ${row.failedSamples.join('\n')}`).toBe(0);
      expect(row.subscriberGaps, row.name).toBe(0);
      expect(row.subscriberOutOfOrder, row.name).toBe(0);
      expect(row.requests, row.name).toBeGreaterThan(0);
    }
    // v4's errors are what rolled it back; every switch reached every replica.
    expect(report.rollouts[3]?.expectedErrors).toBeGreaterThan(0);
    const switches = report.rollouts.flatMap((row) => row.switches);
    expect(switches).toHaveLength(4);
    for (const entry of switches) for (const [node, ms] of Object.entries(entry.perReplicaMs)) expect(ms, `v${entry.version} on ${node}`).not.toBeNull();
  }, 400_000);
});
