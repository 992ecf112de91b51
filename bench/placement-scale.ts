// The placement solver at cluster scale, in process and deterministic (seeded): 100 nodes in 5
// regions, 1,000 apps with mixed specs placed one after another (each sees the voter load the
// earlier ones left), then the loss of one node and, separately, of one whole region, each
// healed by re-placing the apps that had a replica there and walking nextStep to the new target.
// Prints how evenly voters are spread, whether every spec is met, what survives, and what the
// moves cost. The cluster itself is placement-cluster-model.ts: this file is only the driver.
// Run: npx tsc -p tsconfig.json && node dist/bench/placement-scale.js [--seed N]
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { membershipMatches, nextStep, place } from '../src/control/placement.js';
import type { FailureDomain, MembershipStep, Placement, PlacementSpec, Survival } from '../src/control/placement-types.js';
import { meetsSurvival, quorumOf, survivalOf } from '../src/control/survival.js';
import type { NodeId } from '../src/model/ids.js';
import { seededRandom } from '../test/support/seeded-random.js';
import { SimCluster, type SimApp, type SimNode } from './placement-cluster-model.js';

const APP_COUNT = 1_000;
const SEED_DEFAULT = 20_261_202;
/** Per region: zone sizes (nodes per zone), 100 nodes in all. sa's zones are uneven on purpose. */
const REGION_ZONES: Readonly<Record<string, readonly number[]>> = {
  af: [6, 6],
  ap: [10, 10],
  eu: [7, 7, 7, 7],
  sa: [6, 5, 5],
  us: [8, 8, 8],
};
/** The load target: no node of a region further than this from the region's mean. */
const LOAD_DEVIATION_RATIO_MAX = 0.1;
const LOST_REGION = 'us';

function buildNodes(): SimNode[] {
  const nodes: SimNode[] = [];
  for (const [region, zoneSizes] of Object.entries(REGION_ZONES)) {
    zoneSizes.forEach((size, zoneIndex) => {
      const zone = `${region}-${String.fromCharCode(97 + zoneIndex)}`;
      for (let index = 1; index <= size; index++) nodes.push({ id: `${zone}${index}`, region, zone });
    });
  }
  return nodes;
}

/** Specs as operators might write them, but none the cluster cannot meet: survive zone in a
 *  single region only where it has three zones or more (two zones cannot hold 3 voters apart). */
function buildSpecs(seed: number): PlacementSpec[] {
  const random = seededRandom(seed);
  const regions = Object.keys(REGION_ZONES);
  const zonesOf = (region: string): number => REGION_ZONES[region]!.length;
  return Array.from({ length: APP_COUNT }, () => {
    const draw = random();
    const regionCount = draw < 0.3 ? 1 : draw < 0.7 ? 2 : 3;
    const chosen = pickDistinct(regions, regionCount, random).sort();
    const replicas = random() < 0.6 ? 3 : 5;
    const surviveDraw = random();
    let survive: FailureDomain | undefined;
    if (regionCount === 3 && surviveDraw < 0.4) survive = 'region';
    else if (surviveDraw < 0.7 && (regionCount > 1 || zonesOf(chosen[0]!) >= 3)) survive = 'zone';
    return { regions: chosen, replicas, survive };
  });
}

/** `count` distinct items, each equally likely (a partial Fisher-Yates shuffle). */
function pickDistinct<T>(items: readonly T[], count: number, random: () => number): T[] {
  const pool = [...items];
  for (let index = 0; index < count; index++) {
    const swap = index + Math.floor(random() * (pool.length - index));
    [pool[index], pool[swap]] = [pool[swap]!, pool[index]!];
  }
  return pool.slice(0, count);
}

/** What a spec promises, checked from the outside: count, regions, hosts, survival, evenness. */
function specProblem(spec: PlacementSpec, placement: Placement, cluster: SimCluster): string | undefined {
  const nodes = cluster.candidatesFor();
  const byId = new Map(nodes.map((node) => [node.id, node]));
  if (placement.voters.length !== spec.replicas) return `${placement.voters.length} voters, not ${spec.replicas}`;
  const hosts = [...placement.voters, ...placement.learners].sort();
  const expected = nodes.filter((node) => node.eligible && spec.regions.includes(node.region)).map((node) => node.id).sort();
  if (hosts.join() !== expected.join()) return 'hosts are not exactly the eligible nodes of its regions';
  const survival = survivalOf(placement, nodes).survives;
  if (!meetsSurvival(survival, spec.survive)) return `survives ${survival}, asked ${spec.survive}`;
  const perRegion = spec.regions.filter((region) => nodes.some((node) => node.region === region && node.eligible))
    .map((region) => placement.voters.filter((voter) => byId.get(voter)!.region === region).length);
  if (Math.max(...perRegion) - Math.min(...perRegion) > 1) return `uneven spread over regions: ${perRegion.join('+')}`;
  return undefined;
}

interface LoadFigures {
  readonly scope: string;
  /** Apps whose spec lists the region: its demand, which the solver cannot move elsewhere. */
  readonly apps: number | undefined;
  readonly nodes: number;
  readonly min: number;
  readonly mean: number;
  readonly max: number;
  readonly deviationRatioMax: number;
}

function loadFigures(scope: string, apps: number | undefined, loads: readonly number[]): LoadFigures {
  const mean = loads.reduce((total, load) => total + load, 0) / loads.length;
  const deviation = Math.max(...loads.map((load) => Math.abs(load - mean)));
  return { scope, apps, nodes: loads.length, min: Math.min(...loads), mean, max: Math.max(...loads), deviationRatioMax: deviation / mean };
}

function loadTable(cluster: SimCluster): LoadFigures[] {
  const live = cluster.nodes().filter((node) => cluster.isEligible(node.id));
  const rows = [loadFigures('all', undefined, live.map((node) => cluster.voterLoad(node.id)))];
  for (const region of Object.keys(REGION_ZONES)) {
    const inRegion = live.filter((node) => node.region === region);
    const apps = cluster.apps().filter((app) => app.spec.regions.includes(region)).length;
    if (inRegion.length > 0) rows.push(loadFigures(region, apps, inRegion.map((node) => cluster.voterLoad(node.id))));
  }
  return rows;
}

function placeAll(specs: readonly PlacementSpec[]): { cluster: SimCluster; refused: string[] } {
  const cluster = new SimCluster(buildNodes());
  const refused: string[] = [];
  specs.forEach((spec, index) => {
    const name = `app${index}`;
    const result = place(spec, cluster.candidatesFor(name), undefined);
    if (result.ok) cluster.createApp(name, spec, result.placement);
    else refused.push(`${name}: ${result.reason}`);
  });
  return { cluster, refused };
}

interface MoveFigures {
  affected: number;
  replaced: number;
  unchanged: number;
  refused: number;
  refusedSample: string;
  quorumLost: number;
  changes: Record<MembershipStep['kind'], number>;
  /** Of the removals, those of voters (the rest are learners on lost nodes). */
  voterRemovals: number;
  changesPerAppMax: number;
  votersChangedPerAppMax: number;
  /** Smallest (voters - target voters) and (live voters - quorum) seen during any move. */
  voterMarginMin: number;
  liveMarginMin: number;
  notReached: number;
}

/** Loses `lost` nodes, re-places every app that had a replica on one, and walks each to its new
 *  target (caughtUp always true), one app after another so later ones see the new loads. */
function loseNodes(cluster: SimCluster, lost: readonly NodeId[]): MoveFigures {
  for (const node of lost) cluster.failNode(node);
  const lostSet = new Set(lost);
  const figures: MoveFigures = {
    affected: 0, replaced: 0, unchanged: 0, refused: 0, refusedSample: '', quorumLost: 0,
    changes: { addLearner: 0, promote: 0, remove: 0, transferLeader: 0 }, voterRemovals: 0,
    changesPerAppMax: 0, votersChangedPerAppMax: 0, voterMarginMin: Number.POSITIVE_INFINITY, liveMarginMin: Number.POSITIVE_INFINITY, notReached: 0,
  };
  for (const app of cluster.apps()) {
    const before = app.membership;
    if (![...before.voters, ...before.learners].some((node) => lostSet.has(node))) continue;
    figures.affected++;
    if (before.leader === '') {
      figures.quorumLost++; // no leader to propose a change: needs a forced recovery, not a move
      continue;
    }
    const result = place(app.spec, cluster.candidatesFor(app.name), before);
    if (!result.ok) {
      figures.refused++;
      figures.refusedSample ||= `${app.name} ${JSON.stringify(app.spec.regions)} survive ${app.spec.survive}: ${result.reason}`;
      continue;
    }
    cluster.setTarget(app.name, result.placement);
    const changed = result.placement.voters.filter((voter) => !before.voters.includes(voter)).length;
    figures.votersChangedPerAppMax = Math.max(figures.votersChangedPerAppMax, changed);
    if (changed === 0) figures.unchanged++;
    else figures.replaced++;
    walkToTarget(cluster, app, figures);
  }
  return figures;
}

/** Walks one app's group to its target, one committed step at a time, as the control loop will;
 *  checks at every step that the group keeps the target's voter count and a live quorum. */
function walkToTarget(cluster: SimCluster, app: SimApp, figures: MoveFigures): void {
  const start = app.membership;
  const stepsMax = (start.voters.length + start.learners.length + app.target.voters.length + app.target.learners.length) * 2;
  let steps = 0;
  for (let step = nextStep(app.membership, app.target, () => true); step !== undefined && steps < stepsMax; step = nextStep(app.membership, app.target, () => true)) {
    if (step.kind === 'remove' && app.membership.voters.includes(step.node)) figures.voterRemovals++;
    cluster.apply(app.name, step);
    steps++;
    figures.changes[step.kind]++;
    const voters = app.membership.voters;
    figures.voterMarginMin = Math.min(figures.voterMarginMin, voters.length - app.target.voters.length);
    figures.liveMarginMin = Math.min(figures.liveMarginMin, voters.filter((voter) => cluster.isEligible(voter)).length - quorumOf(voters.length));
  }
  if (!membershipMatches(app.membership, app.target)) figures.notReached++;
  figures.changesPerAppMax = Math.max(figures.changesPerAppMax, steps);
}

/** What the apps' groups outlive, by where their voters are; a group that still has a voter on a
 *  lost node (its move was refused, or it has no quorum to move) is counted apart as degraded. */
function survivalLine(cluster: SimCluster): string {
  const counts: Record<Survival | 'degraded', number> = { region: 0, zone: 0, node: 0, none: 0, degraded: 0 };
  const nodes = cluster.candidatesFor();
  for (const app of cluster.apps()) {
    const degraded = app.membership.voters.some((voter) => !cluster.isEligible(voter));
    counts[degraded ? 'degraded' : survivalOf(app.membership, nodes).survives]++;
  }
  return `survives region ${counts.region}, zone ${counts.zone}, node ${counts.node}, none ${counts.none}; degraded ${counts.degraded}`;
}

function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const align = (cell: string, column: number): string => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!));
  return cells.map((row) => row.map(align).join('  ')).join('\n');
}

function printLoads(title: string, rows: readonly LoadFigures[]): boolean {
  console.log(`\n${title}`);
  const within = (row: LoadFigures): boolean => row.deviationRatioMax <= LOAD_DEVIATION_RATIO_MAX;
  console.log(table(['voters/node', 'apps', 'nodes', 'min', 'mean', 'max', 'max dev', `<= ${LOAD_DEVIATION_RATIO_MAX * 100}%`],
    rows.map((row) => [row.scope, row.apps ?? APP_COUNT, row.nodes, row.min, row.mean.toFixed(1), row.max, `${(row.deviationRatioMax * 100).toFixed(1)}%`, row.scope === 'all' ? '(n/a)' : within(row) ? 'yes' : 'NO'])));
  return rows.filter((row) => row.scope !== 'all').every(within);
}

function printMoves(title: string, figures: MoveFigures): boolean {
  console.log(`\n${title}`);
  const { changes } = figures;
  console.log(table(['figure', 'value'], [
    ['apps with a replica there', figures.affected],
    ['re-placed, voters changed', figures.replaced],
    ['re-placed, voters kept (learner only)', figures.unchanged],
    ['refused (spec cannot be met now)', figures.refused],
    ['quorum lost (needs forced recovery)', figures.quorumLost],
    ['membership changes', changes.addLearner + changes.promote + changes.remove + changes.transferLeader],
    ['  addLearner / promote / transferLeader', `${changes.addLearner} / ${changes.promote} / ${changes.transferLeader}`],
    ['  remove voter / remove learner', `${figures.voterRemovals} / ${changes.remove - figures.voterRemovals}`],
    ['changes per app, max', figures.changesPerAppMax],
    ['voters replaced per app, max', figures.votersChangedPerAppMax],
    ['min voters - target voters during moves', figures.voterMarginMin === Number.POSITIVE_INFINITY ? '-' : figures.voterMarginMin],
    ['min live voters - quorum during moves', figures.liveMarginMin === Number.POSITIVE_INFINITY ? '-' : figures.liveMarginMin],
    ['moves that did not reach the target', figures.notReached],
  ]));
  if (figures.refusedSample !== '') console.log(`  e.g. ${figures.refusedSample}`);
  return figures.notReached === 0 && !(figures.voterMarginMin < 0) && !(figures.liveMarginMin < 0);
}

function main(): void {
  const { values } = parseArgs({ options: { seed: { type: 'string' } } });
  const seed = values.seed === undefined ? SEED_DEFAULT : Number(values.seed);
  const startedMs = performance.now();
  const specs = buildSpecs(seed);
  console.log(`placement scale simulation, seed ${seed}: ${buildNodes().length} nodes in ${Object.keys(REGION_ZONES).length} regions, ${APP_COUNT} apps`);

  const initial = placeAll(specs);
  const unmet = initial.cluster.apps().map((app) => [app.name, specProblem(app.spec, app.target, initial.cluster)] as const).filter(([, problem]) => problem !== undefined);
  console.log(`\nspecs: ${initial.cluster.apps().length} placed, ${initial.refused.length} refused, ${unmet.length} placed but not met`);
  for (const line of [...initial.refused, ...unmet.map(([name, problem]) => `${name}: ${problem}`)].slice(0, 5)) console.log(`  ${line}`);
  console.log(survivalLine(initial.cluster));
  let ok = printLoads('voter load after placing all apps', loadTable(initial.cluster)) && initial.refused.length === 0 && unmet.length === 0;

  // The most loaded node goes: the worst case for how much has to move.
  const nodeLoss = placeAll(specs).cluster;
  const lostNode = nodeLoss.nodes().map((node) => node.id).sort((a, b) => nodeLoss.voterLoad(b) - nodeLoss.voterLoad(a) || (a < b ? -1 : 1))[0]!;
  ok = printMoves(`loss of node ${lostNode} (${nodeLoss.voterLoad(lostNode)} voters)`, loseNodes(nodeLoss, [lostNode])) && ok;
  ok = printLoads(`voter load after healing the loss of ${lostNode}`, loadTable(nodeLoss)) && ok;

  const regionLoss = placeAll(specs).cluster;
  const lostNodes = regionLoss.nodes().filter((node) => node.region === LOST_REGION).map((node) => node.id);
  ok = printMoves(`loss of region ${LOST_REGION} (${lostNodes.length} nodes)`, loseNodes(regionLoss, lostNodes)) && ok;
  console.log(`after the moves: ${survivalLine(regionLoss)}`);
  printLoads(`voter load after healing the loss of ${LOST_REGION}`, loadTable(regionLoss));

  console.log(`\n${ok ? 'all checks held' : 'SOME CHECKS FAILED'} in ${((performance.now() - startedMs) / 1000).toFixed(2)} s`);
  if (!ok) process.exitCode = 1;
}

main();
