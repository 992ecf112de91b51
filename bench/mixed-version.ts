// The mixed-version checker with long phases: a control plane and five real nodes in three
// regions (eu1, eu2, us1, us2, ap1) under --simulate-wan default, the app placed on eu,us,ap,
// reads and writes through every node and a WebSocket subscriber on each, while the app goes
// v1 -> v2 (schema and resource change) -> rollback to v1 -> v3 (a failing check: aborted) ->
// v4 (over the error rate: rolled back by the control plane). Prints, per rollout: requests,
// failed requests, mismatched versions, subscriber gaps, and the switch latency per replica
// (from the last prepared report to the replica's first answer with the new version).
//   npm run build && node dist/bench/mixed-version.js [--phase 20s] [--workers 2]
import { parseArgs } from 'node:util';
import { runMain } from './run-main.js';
import { Fleet, nodesOf } from '../test/support/fleet.js';
import { mixedVersionTable, runMixedVersion } from '../test/support/mixed-version.js';

function seconds(text: string): number {
  const match = /^(\d+)s$/.exec(text);
  if (match === null) throw new Error(`--phase must be seconds such as 20s, not '${text}'`);
  return Number(match[1]) * 1_000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { phase: { type: 'string', default: '20s' }, workers: { type: 'string', default: '2' } } });
  const workersPerNode = Number(values.workers);
  if (!Number.isInteger(workersPerNode) || workersPerNode < 1 || workersPerNode > 16) throw new Error('--workers must be 1 to 16');
  const phaseMs = seconds(values.phase);
  const fleet = await Fleet.start({ nodes: nodesOf('eu:2,us:2,ap:1'), nodeArgs: ['--simulate-wan', 'default'] });
  try {
    const report = await runMixedVersion(fleet, { phaseMs, workersPerNode, pauseMs: 0, pollEveryMs: 5, regions: 'eu,us,ap', log: (line) => process.stderr.write(`${line}\n`) });
    const status = await fleet.ctlJson<{ voters: string[]; learners: string[]; group: { leader: string } }>(['status', 'mixed']);
    process.stdout.write(`voters ${status.voters.join(', ')}, learners ${status.learners.join(', ')}, leader ${status.group.leader}; ${values.phase} of load after each rollout, ${workersPerNode} request loops per node plus a 5 ms poller\n\n`);
    process.stdout.write(mixedVersionTable(report));
    const bad = report.rollouts.filter((row) => row.mismatched > 0 || row.failed > 0 || row.subscriberGaps > 0 || row.subscriberOutOfOrder > 0);
    for (const row of bad) process.stdout.write(`\n${row.name}:\n${[...row.failedSamples, ...row.mismatchSamples].join('\n')}\n`);
    if (bad.length > 0) process.exitCode = 1;
  } finally {
    await fleet.close();
  }
}

runMain(main);
