// The scenario of issue 8 on the placement simulation (placement-sim.ts): register the nodes,
// deploy the apps (and a few specs no cluster can meet), then lose the most loaded node and,
// after the groups have healed, a whole region. Returns every figure and the list of checks
// that failed (empty when all held), for bench/placement-scale.ts to print and
// test/control/scale-sim.test.ts to assert at a smaller size.
import { performance } from 'node:perf_hooks';
import { bundleHash } from '../../src/app/bundle.js';
import { membershipMatches } from '../../src/control/placement.js';
import type { PlacementSpec, Survival } from '../../src/control/placement-types.js';
import { quorumOf } from '../../src/control/survival.js';
import type { NodeId } from '../../src/model/ids.js';
import { changesMin, loadTable, nodeSites, specProblem, survivalByBruteForce, surviveCounts, type LoadFigures } from './placement-figures.js';
import { drawSpecs, layoutFits, PlacementSim, type ClusterLayout, type ReconcileRun } from './placement-sim.js';

export interface ScenarioConfig {
  readonly layout: ClusterLayout;
  readonly appCount: number;
  readonly seed: number;
  readonly lostRegion: string;
  /** No node of a region further than this from the region's mean voter load: right after the
   *  deploys, and after each loss has healed (a smaller cluster, where one voter is a larger
   *  share of a node's load, may need a wider bound there). */
  readonly loadDeviationRatioMax: { readonly placed: number; readonly healed: number };
}

export interface PhaseFigures {
  readonly loads: readonly LoadFigures[];
  /** From each app's recorded survival report. */
  readonly survival: Record<Survival, number>;
  /** Apps whose recorded survival, ControlState.survivalOf and the brute-force count disagree. */
  readonly survivalMismatches: readonly string[];
  /** Apps without a shortfall whose target breaks their spec. */
  readonly unmet: readonly string[];
  readonly shortfall: number;
}

export interface LossFigures {
  readonly lost: readonly NodeId[];
  /** Voter replicas the groups had on the lost nodes. */
  readonly lostVoters: number;
  /** Apps with a replica (voter or learner) on a lost node. */
  readonly affected: number;
  readonly targetsChanged: number;
  /** Targets changed although the app had nothing on a lost node: moves nobody needed. */
  readonly targetsChangedUnaffected: number;
  /** Apps whose live voters are fewer than a quorum: no leader, so no membership change. */
  readonly noQuorum: number;
  readonly noQuorumShapes: readonly (readonly [string, number])[];
  readonly noQuorumSample: string;
  /** Apps whose spec cannot be met any more: they keep running with `shortfall` set. */
  readonly shortfall: number;
  readonly shortfallWithQuorum: number;
  readonly shortfallSample: string;
  /** Affected apps with a quorum and a spec that can still be met, and of those, the ones at
   *  their target afterwards with every voter live. */
  readonly repairable: number;
  readonly repaired: number;
  /** Live voters the new targets dropped, beyond the lost ones (0 for the fewest changes). */
  readonly votersMovedBeyondLost: number;
  /** Over the groups with a leader that reached their target: the changes they took, and the
   *  sum of changesMin(membership, target) from before the moves. */
  readonly changesTakenConverged: number;
  readonly changesMinConverged: number;
  readonly appsAboveMin: number;
  readonly aboveMinSample: string;
  /** While the nodes were only suspect: steps taken (0 expected) and targets changed (0). */
  readonly suspectSteps: number;
  readonly suspectTargetsChanged: number;
  /** Apps whose survival report, before the loss, said they outlive the loss of this much (a
   *  node, or a region), and of them the ones that kept their quorum: all of them, if the
   *  reports are right. */
  readonly predictedToSurvive: number;
  readonly predictedAndSurvived: number;
  readonly run: ReconcileRun;
  /** Groups with a leader not at their target after the run, apart from the stalled ones. */
  readonly notConverged: readonly string[];
  /** Groups with a shortfall whose target keeps a voter on a down node the group never had:
   *  nextStep waits for that node to catch up before it can be promoted, for ever. */
  readonly stalled: readonly string[];
  readonly livenessApplyMs: number;
  readonly reconcileMs: number;
  readonly after: PhaseFigures;
}

export interface ScenarioReport {
  readonly config: ScenarioConfig;
  readonly nodeCount: number;
  readonly specMix: string;
  readonly placed: number;
  readonly refused: readonly { readonly name: string; readonly spec: PlacementSpec; readonly reason: string }[];
  readonly deployMs: number;
  /** Steps the reconciler took right after the deploys (0: groups are founded at their target). */
  readonly initialSteps: number;
  readonly initial: PhaseFigures;
  readonly lostNode: NodeId;
  readonly lostNodeVoters: number;
  readonly nodeLoss: LossFigures;
  readonly regionLoss: LossFigures;
  readonly entryCount: number;
  readonly elapsedMs: number;
  /** Every check that failed, in words; empty when all held. */
  readonly problems: readonly string[];
  /** What the control state does that the issue's checks do not ask about but looks wrong:
   *  reported, not counted as a failed check. */
  readonly findings: readonly string[];
}

const bundleFiles = { 'schema.graphql': 'type T @table { id: ID @primaryKey }' };

export function runScenario(config: ScenarioConfig): ScenarioReport {
  const startedMs = performance.now();
  const problems: string[] = [];
  const sim = new PlacementSim(config.seed);
  sim.registerNodes(config.layout);
  const bundle = { hash: bundleHash(bundleFiles), files: bundleFiles };

  const specs = drawSpecs(config.layout, config.appCount, config.seed);
  const refused: { name: string; spec: PlacementSpec; reason: string }[] = [];
  const deployStartedMs = performance.now();
  specs.forEach((spec, index) => {
    const name = `app${String(index).padStart(4, '0')}`;
    const result = sim.deploy(name, spec, bundle);
    if (!result.ok) {
      refused.push({ name, spec, reason: result.reason });
      problems.push(`deploy ${name} ${describeSpec(spec)} was refused though the layout fits it: ${result.reason}`);
    }
  });
  const deployMs = performance.now() - deployStartedMs;
  for (const { name, spec } of impossibleDeploys(config.layout)) {
    const revision = sim.state.revision;
    const result = sim.deploy(name, spec, bundle);
    if (result.ok) problems.push(`deploy ${name} ${describeSpec(spec)} was placed though no cluster of this layout can meet it`);
    else refused.push({ name, spec, reason: result.reason });
    if (sim.state.revision !== revision || (!result.ok && sim.state.apps.has(name))) problems.push(`the refused deploy ${name} changed the control state`);
  }
  const placed = sim.state.apps.size;

  const initialRun = sim.reconcile();
  const initialSteps = stepCount(initialRun);
  if (initialSteps !== 0) problems.push(`the reconciler took ${initialSteps} steps right after the deploys; groups are founded at their target`);
  const initial = phaseFigures(sim, config.loadDeviationRatioMax.placed, 'after the deploys', problems);
  if (initial.shortfall !== 0) problems.push(`after the deploys: ${initial.shortfall} apps have a shortfall`);

  const sites = nodeSites(sim.state);
  const load = voterLoads(sim);
  const lostNode = [...sites.values()].filter((site) => site.eligible).map((site) => site.id).sort((a, b) => (load.get(b) ?? 0) - (load.get(a) ?? 0) || (a < b ? -1 : 1))[0]!;
  const lostNodeVoters = load.get(lostNode) ?? 0;
  const nodeLoss = loseNodes(sim, config, [lostNode], 'node', `loss of ${lostNode}`, problems);
  if (nodeLoss.noQuorum !== 0) problems.push(`loss of ${lostNode}: ${nodeLoss.noQuorum} apps lost their quorum to one node (every app has 3 voters or more)`);

  const regionNodes = [...sites.values()].filter((site) => site.region === config.lostRegion && !sim.isDead(site.id)).map((site) => site.id);
  const regionLoss = loseNodes(sim, config, regionNodes, 'region', `loss of region ${config.lostRegion}`, problems);
  const findings = [nodeLoss, regionLoss]
    .filter((loss) => loss.stalled.length !== 0)
    .map((loss) => `${loss.stalled.length} groups with a shortfall stall on a target voter that is down and was never theirs (ControlState keeps the last re-placement's voters when the spec stops fitting), e.g. ${loss.stalled[0]}`);

  return {
    config,
    nodeCount: sites.size,
    specMix: specMix(specs),
    placed,
    refused,
    deployMs,
    initialSteps,
    initial,
    lostNode,
    lostNodeVoters,
    nodeLoss,
    regionLoss,
    entryCount: sim.entryCount,
    elapsedMs: performance.now() - startedMs,
    problems,
    findings,
  };
}

/** Specs the layout cannot meet, and a name ControlState must refuse, each to be refused. */
function impossibleDeploys(layout: ClusterLayout): { name: string; spec: PlacementSpec }[] {
  const regions = Object.keys(layout).sort();
  const fewestZones = [...regions].sort((a, b) => layout[a]!.length - layout[b]!.length)[0]!;
  const candidates: { name: string; spec: PlacementSpec }[] = [
    { name: 'refused-two-region-survival', spec: { regions: regions.slice(0, 2), replicas: 3, survive: 'region' } },
    { name: 'refused-unknown-region', spec: { regions: ['nowhere'], replicas: 3, survive: undefined } },
    { name: 'refused-zones-too-few', spec: { regions: [fewestZones], replicas: 3, survive: 'zone' } },
    { name: 'refused-seven-zones-apart', spec: { regions: [fewestZones], replicas: 7, survive: 'zone' } },
  ];
  return [...candidates.filter(({ spec }) => !layoutFits(spec, layout)), { name: '9-lives', spec: { regions: [regions[0]!], replicas: 3, survive: undefined } }];
}

function loseNodes(sim: PlacementSim, config: ScenarioConfig, lost: readonly NodeId[], domain: 'node' | 'region', label: string, problems: string[]): LossFigures {
  const lostSet = new Set(lost);
  const outlives = (survives: Survival): boolean => (domain === 'region' ? survives === 'region' : survives !== 'none');
  const predicted = new Set([...sim.state.apps.values()].filter((app) => outlives(app.survival.survives)).map((app) => app.name));
  const targetsBefore = new Map([...sim.state.apps].map(([name, app]) => [name, app.target]));
  const groupsBefore = new Map([...sim.state.apps.keys()].map((name) => [name, sim.membership(name)!]));

  // The processes stop; the liveness monitor marks them suspect (nothing moves), the reconciler
  // passes, and later marks them down (their apps are re-placed).
  sim.kill(lost);
  sim.markLiveness(lost, 'suspect');
  const suspectTargetsChanged = [...sim.state.apps].filter(([name, app]) => !membershipMatches(app.target, targetsBefore.get(name)!)).length;
  const suspectSteps = stepCount(sim.reconcile());
  if (suspectSteps !== 0 || suspectTargetsChanged !== 0) problems.push(`${label}: while suspect, ${suspectTargetsChanged} targets changed and ${suspectSteps} steps were taken`);
  const livenessStartedMs = performance.now();
  sim.markLiveness(lost, 'down');
  const livenessApplyMs = performance.now() - livenessStartedMs;

  let lostVoters = 0;
  let affected = 0;
  let targetsChanged = 0;
  let targetsChangedUnaffected = 0;
  let noQuorum = 0;
  let noQuorumSample = '';
  const noQuorumShapes = new Map<string, number>();
  let votersMovedBeyondLost = 0;
  const minByApp = new Map<string, number>();
  const repairable: string[] = [];
  for (const [name, app] of sim.state.apps) {
    const group = sim.membership(name)!;
    const hadThere = [...group.voters, ...group.learners].some((node) => lostSet.has(node));
    const votersThere = group.voters.filter((voter) => lostSet.has(voter)).length;
    lostVoters += votersThere;
    if (hadThere) affected++;
    const changed = !membershipMatches(app.target, targetsBefore.get(name)!);
    if (changed) targetsChanged++;
    if (changed && !hadThere) targetsChangedUnaffected++;
    if (group.leader === '') {
      noQuorum++;
      const shape = `${votersThere} of ${group.voters.length} voters lost, survive ${app.spec.survive ?? 'nothing'}`;
      noQuorumShapes.set(shape, (noQuorumShapes.get(shape) ?? 0) + 1);
      noQuorumSample ||= `${name} ${describeSpec(app.spec)}, voters ${group.voters.join(', ')}: ${sim.liveVoters(group)} live of ${group.voters.length}, quorum ${quorumOf(group.voters.length)}`;
      continue;
    }
    minByApp.set(name, changesMin(group, app.target));
    if (app.shortfall !== undefined) continue;
    const dropped = group.voters.filter((voter) => !app.target.voters.includes(voter)).length;
    votersMovedBeyondLost += dropped - votersThere;
    if (hadThere) repairable.push(name);
  }
  const predictedAndSurvived = [...predicted].filter((name) => sim.membership(name)!.leader !== '').length;
  if (predictedAndSurvived !== predicted.size) problems.push(`${label}: ${predicted.size - predictedAndSurvived} of the ${predicted.size} apps reported to outlive it lost their quorum`);
  const shortfallApps = [...sim.state.apps.values()].filter((app) => app.shortfall !== undefined);
  const shortfallWithQuorum = shortfallApps.filter((app) => sim.membership(app.name)!.leader !== '').length;
  const firstShort = shortfallApps[0];
  const shortfallSample = firstShort === undefined ? '' : `${firstShort.name} ${describeSpec(firstShort.spec)}: ${firstShort.shortfall}`;

  const reconcileStartedMs = performance.now();
  const run = sim.reconcile();
  const reconcileMs = performance.now() - reconcileStartedMs;

  const notConverged: string[] = [];
  const stalled: string[] = [];
  for (const app of sim.state.apps.values()) {
    const group = sim.membership(app.name)!;
    if (group.leader === '' || membershipMatches(group, app.target)) continue;
    const where = `${app.name} ${describeSpec(app.spec)}: group voters ${group.voters.join(',')}, target voters ${app.target.voters.join(',')}`;
    const waitsOnDown = app.target.voters.some((voter) => sim.isDead(voter) && !group.voters.includes(voter));
    (app.shortfall !== undefined && waitsOnDown ? stalled : notConverged).push(where);
  }
  let changesTakenConverged = 0;
  let changesMinConverged = 0;
  let appsAboveMin = 0;
  let aboveMinSample = '';
  for (const [name, min] of minByApp) {
    if (!membershipMatches(sim.membership(name)!, sim.state.apps.get(name)!.target)) continue;
    const taken = run.changesByApp.get(name) ?? 0;
    changesTakenConverged += taken;
    changesMinConverged += min;
    if (taken <= min) continue;
    appsAboveMin++;
    aboveMinSample ||= `${name}: ${taken} changes, ${min} needed (from voters ${groupsBefore.get(name)!.voters.join(',')})`;
  }
  const repaired = repairable.filter((name) => {
    const group = sim.membership(name)!;
    return membershipMatches(group, sim.state.apps.get(name)!.target) && group.voters.every((voter) => !sim.isDead(voter));
  }).length;

  for (const violation of run.violations.slice(0, 5)) problems.push(`${label}: ${violation}`);
  if (run.violations.length > 5) problems.push(`${label}: ${run.violations.length - 5} more step violations`);
  if (run.passLimitReached) problems.push(`${label}: the reconciler was still taking steps after ${run.passes} passes`);
  if (run.stepEntriesRefused !== 0) problems.push(`${label}: ControlState refused ${run.stepEntriesRefused} app.step entries`);
  if (notConverged.length !== 0) problems.push(`${label}: ${notConverged.length} groups with a leader did not reach their target, e.g. ${notConverged[0]}`);
  if (repaired !== repairable.length) problems.push(`${label}: ${repairable.length - repaired} of ${repairable.length} repairable apps were not repaired`);
  if (appsAboveMin !== 0) problems.push(`${label}: ${appsAboveMin} apps took more changes than needed, e.g. ${aboveMinSample}`);
  if (votersMovedBeyondLost !== 0) problems.push(`${label}: the new targets moved ${votersMovedBeyondLost} live voters nobody lost`);
  if (targetsChangedUnaffected !== 0) problems.push(`${label}: ${targetsChangedUnaffected} apps with nothing on the lost nodes got a new target`);

  return {
    lost,
    lostVoters,
    affected,
    targetsChanged,
    targetsChangedUnaffected,
    noQuorum,
    noQuorumShapes: [...noQuorumShapes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
    noQuorumSample,
    shortfall: shortfallApps.length,
    shortfallWithQuorum,
    shortfallSample,
    repairable: repairable.length,
    repaired,
    votersMovedBeyondLost,
    changesTakenConverged,
    changesMinConverged,
    appsAboveMin,
    aboveMinSample,
    suspectSteps,
    suspectTargetsChanged,
    predictedToSurvive: predicted.size,
    predictedAndSurvived,
    run,
    notConverged,
    stalled,
    livenessApplyMs,
    reconcileMs,
    after: phaseFigures(sim, config.loadDeviationRatioMax.healed, `after the ${label}`, problems),
  };
}

/** Load, survival and spec figures of the control state as it stands, with their checks. */
function phaseFigures(sim: PlacementSim, loadDeviationRatioMax: number, label: string, problems: string[]): PhaseFigures {
  const sites = nodeSites(sim.state);
  const survival = surviveCounts();
  const survivalMismatches: string[] = [];
  const unmet: string[] = [];
  let shortfall = 0;
  for (const app of sim.state.apps.values()) {
    survival[app.survival.survives]++;
    const recomputed = sim.state.survivalOf(app);
    const counted = survivalByBruteForce(app.target, sites);
    if (app.survival.survives !== recomputed.survives || app.survival.reason !== recomputed.reason || app.survival.survives !== counted) {
      survivalMismatches.push(`${app.name}: recorded ${app.survival.survives} (${app.survival.reason}), survivalOf ${recomputed.survives} (${recomputed.reason}), brute force ${counted}`);
    }
    if (app.shortfall !== undefined) shortfall++;
    else {
      const problem = specProblem(app.spec, app.target, sites);
      if (problem !== undefined) unmet.push(`${app.name} ${describeSpec(app.spec)}: ${problem}`);
    }
  }
  const loads = loadTable(sim.state, sites);
  if (survivalMismatches.length !== 0) problems.push(`${label}: ${survivalMismatches.length} survival reports disagree with the brute-force count, e.g. ${survivalMismatches[0]}`);
  if (unmet.length !== 0) problems.push(`${label}: ${unmet.length} targets without a shortfall break their spec, e.g. ${unmet[0]}`);
  for (const row of loads) {
    if (row.scope !== 'all' && row.deviationRatioMax > loadDeviationRatioMax) {
      problems.push(`${label}: voters per node in ${row.scope} range ${row.min}..${row.max} around a mean of ${row.mean.toFixed(1)} (${(row.deviationRatioMax * 100).toFixed(1)}% off, allowed ${loadDeviationRatioMax * 100}%)`);
    }
  }
  return { loads, survival, survivalMismatches, unmet, shortfall };
}

function voterLoads(sim: PlacementSim): Map<NodeId, number> {
  const load = new Map<NodeId, number>();
  for (const app of sim.state.apps.values()) for (const voter of app.target.voters) load.set(voter, (load.get(voter) ?? 0) + 1);
  return load;
}

export function stepCount(run: ReconcileRun): number {
  return run.changes.addLearner + run.changes.promote + run.changes.remove + run.changes.transferLeader;
}

export function describeSpec(spec: PlacementSpec): string {
  return `[${spec.regions.join(',')}] ${spec.replicas} voters${spec.survive === undefined ? '' : ` survive ${spec.survive}`}`;
}

function specMix(specs: readonly PlacementSpec[]): string {
  const count = (predicate: (spec: PlacementSpec) => boolean): number => specs.filter(predicate).length;
  return (
    `regions 1/2/3: ${count((s) => s.regions.length === 1)}/${count((s) => s.regions.length === 2)}/${count((s) => s.regions.length === 3)}; ` +
    `voters 3/5: ${count((s) => s.replicas === 3)}/${count((s) => s.replicas === 5)}; ` +
    `survive region/zone/nothing: ${count((s) => s.survive === 'region')}/${count((s) => s.survive === 'zone')}/${count((s) => s.survive === undefined)}`
  );
}
