// Placement and reconciliation at cluster scale (issue 8), in process and deterministic
// (seeded): the real control state machine over 100 simulated nodes in 5 regions and 1,000 apps
// with mixed specs, then the loss of the most loaded node and, once the groups have healed, of
// a whole region. Prints how evenly voters load the nodes, whether every spec is met, what the
// apps survive, and what the moves cost against the fewest changes possible. The simulation is
// test/support/placement-scenario.ts (test/control/scale-sim.test.ts runs it smaller).
// Run: npm run build && node dist/bench/placement-scale.js [--seed N]
import { parseArgs } from 'node:util';
import type { ClusterLayout } from '../test/support/placement-sim.js';
import { runScenario, stepCount, type LossFigures, type PhaseFigures, type ScenarioConfig } from '../test/support/placement-scenario.js';
import type { LoadFigures } from '../test/support/placement-figures.js';

const seedDefault = 20_261_202;
/** 100 nodes: per region its zone sizes. sa's zones are uneven on purpose, af has only two. */
const layout: ClusterLayout = {
  af: [6, 6],
  ap: [10, 10],
  eu: [7, 7, 7, 7],
  sa: [6, 5, 5],
  us: [8, 8, 8],
};

function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const align = (cell: string, column: number): string => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!));
  return cells.map((row) => row.map(align).join('  ')).join('\n');
}

function printPhase(title: string, phase: PhaseFigures, bound: number): void {
  console.log(`\n${title}`);
  const within = (row: LoadFigures): string => (row.scope === 'all' ? '(n/a)' : row.deviationRatioMax <= bound ? 'yes' : 'NO');
  console.log(table(['voters/node', 'apps', 'nodes', 'min', 'mean', 'max', 'max dev', `<= ${bound * 100}%`],
    phase.loads.map((row) => [row.scope, row.apps, row.nodes, row.min, row.mean.toFixed(1), row.max, `${(row.deviationRatioMax * 100).toFixed(1)}%`, within(row)])));
  const { survival } = phase;
  console.log(`survival reports: region ${survival.region}, zone ${survival.zone}, node ${survival.node}, none ${survival.none}; ` +
    `${phase.survivalMismatches.length} disagree with the brute-force count; ${phase.unmet.length} targets break their spec; ${phase.shortfall} apps with a shortfall`);
}

function printLoss(title: string, loss: LossFigures): void {
  console.log(`\n${title}`);
  const { run } = loss;
  const margin = (value: number): string | number => (value === Number.POSITIVE_INFINITY ? '-' : value);
  console.log(table(['figure', 'value'], [
    ['voters on the lost nodes', loss.lostVoters],
    ['apps with a replica there', loss.affected],
    ['targets changed (of them: apps with nothing there)', `${loss.targetsChanged} (${loss.targetsChangedUnaffected})`],
    ['apps reported to outlive this loss / of them kept a quorum', `${loss.predictedToSurvive} / ${loss.predictedAndSurvived}`],
    ['apps without a quorum (cannot be repaired by membership changes)', loss.noQuorum],
    ['apps with a shortfall (spec cannot be met; of them with a quorum)', `${loss.shortfall} (${loss.shortfallWithQuorum})`],
    ['repairable apps repaired', `${loss.repaired} / ${loss.repairable}`],
    ['membership changes taken', stepCount(run)],
    ['  by groups at their target / fewest possible', `${loss.changesTakenConverged} / ${loss.changesMinConverged}`],
    ['  addLearner / promote / transferLeader', `${run.changes.addLearner} / ${run.changes.promote} / ${run.changes.transferLeader}`],
    ['  remove voter / remove learner', `${run.voterRemovals} / ${run.changes.remove - run.voterRemovals}`],
    ['apps above the fewest changes', loss.appsAboveMin],
    ['live voters moved beyond the lost ones', loss.votersMovedBeyondLost],
    ['changes per app, max', Math.max(0, ...run.changesByApp.values())],
    ['min voters - target voters during moves', margin(run.voterMarginMin)],
    ['min live voters - quorum during moves', margin(run.liveMarginMin)],
    ['step violations / groups not at target', `${run.violations.length} / ${loss.notConverged.length}`],
    ['groups stalled on a down voter they never had', loss.stalled.length],
    ['steps while only suspect', loss.suspectSteps],
    ['reconciler passes', run.passes],
    ['apply of the down entries / reconcile, ms', `${loss.livenessApplyMs.toFixed(0)} / ${loss.reconcileMs.toFixed(0)}`],
  ]));
  for (const [shape, count] of loss.noQuorumShapes) console.log(`  no quorum: ${count} apps with ${shape}`);
  if (loss.noQuorumSample !== '') console.log(`  e.g. ${loss.noQuorumSample}`);
  if (loss.shortfallSample !== '') console.log(`  shortfall e.g. ${loss.shortfallSample}`);
}

function main(): void {
  const { values } = parseArgs({ options: { seed: { type: 'string' } } });
  const config: ScenarioConfig = {
    layout,
    appCount: 1_000,
    seed: values.seed === undefined ? seedDefault : Number(values.seed),
    lostRegion: 'us',
    loadDeviationRatioMax: { placed: 0.1, healed: 0.1 },
  };
  const report = runScenario(config);
  console.log(`placement scale simulation, seed ${config.seed}: ${report.nodeCount} nodes in ${Object.keys(layout).length} regions, ${config.appCount} apps (ControlState, simulated groups)`);
  console.log(`specs: ${report.specMix}`);
  console.log(`deploys: ${report.placed} placed in ${report.deployMs.toFixed(0)} ms, ${report.refused.length} refused; reconciler steps right after: ${report.initialSteps}`);
  for (const { name, reason } of report.refused) console.log(`  refused ${name}: ${reason}`);
  printPhase('after the deploys', report.initial, config.loadDeviationRatioMax.placed);
  printLoss(`loss of node ${report.lostNode} (the most loaded, ${report.lostNodeVoters} voters)`, report.nodeLoss);
  printPhase(`after healing the loss of ${report.lostNode}`, report.nodeLoss.after, config.loadDeviationRatioMax.healed);
  printLoss(`then loss of region ${config.lostRegion} (${report.regionLoss.lost.length} nodes)`, report.regionLoss);
  printPhase(`after healing the loss of ${config.lostRegion}`, report.regionLoss.after, config.loadDeviationRatioMax.healed);
  console.log(`\n${report.entryCount} control entries applied in ${(report.elapsedMs / 1000).toFixed(2)} s`);
  for (const finding of report.findings) console.log(`FINDING: ${finding}`);
  if (report.problems.length === 0) console.log('all checks held');
  else {
    console.log(`SOME CHECKS FAILED (seed ${config.seed}):`);
    for (const problem of report.problems) console.log(`  ${problem}`);
    process.exitCode = 1;
  }
}

main();
