// The control plane's placement and reconciliation at cluster scale, in process and
// deterministic: the real control state machine (ControlState, fed ControlEntry values with a
// simulated clock and log index) over simulated nodes and app groups. A group's membership is
// what its leader would report; the simulated reconciler walks it to the app's target with the
// real reconciler's nextStep and records every step through app.step entries, started then
// done, as src/control/reconciler.ts does. Nodes die (their processes stop, groups re-elect),
// are marked suspect and then down through node.liveness entries, and ControlState re-places
// the apps of their region; the reconciler then moves every group that still has a quorum.
// The figures and checks are in placement-figures.ts; bench/placement-scale.ts and
// test/control/scale-sim.test.ts run the scenario at two sizes.
import { membershipAfter, nextStep } from '../../src/control/placement.js';
import type { FailureDomain, Membership, MembershipStep, PlacementSpec } from '../../src/control/placement-types.js';
import type { ControlCommand, NodeLiveness } from '../../src/control/commands.js';
import { describeStep, stepApplied } from '../../src/control/reconciler.js';
import { ControlState, emptyChanges, type ApplyResult } from '../../src/control/state.js';
import { quorumOf, voterLossMax } from '../../src/control/survival.js';
import type { Bundle } from '../../src/model/app-entries.js';
import type { NodeId } from '../../src/model/ids.js';
import { seededRandom } from './seeded-random.js';

/** Per region, the sizes of its zones (nodes per zone). Zones are named <region>-a, -b, ...
 *  and nodes <zone><n>. */
export type ClusterLayout = Readonly<Record<string, readonly number[]>>;

const simStartMs = Date.UTC(2026, 11, 2);
/** The simulated clock moves this much per control entry. */
const entryIntervalMs = 10;
/** Reconciler passes in one run (each takes at most one step per app): a group that has not
 *  reached its target by then is reported as not converged. */
const passCountMax = 200;
/** A drawn spec lists 1 region below the first odds, 2 below the second, else 3. */
const regionCountOdds = [0.3, 0.7] as const;

export function layoutNodes(layout: ClusterLayout): { id: NodeId; region: string; zone: string }[] {
  return Object.entries(layout).flatMap(([region, zoneSizes]) =>
    zoneSizes.flatMap((size, zoneIndex) => {
      const zone = `${region}-${String.fromCharCode(97 + zoneIndex)}`;
      return Array.from({ length: size }, (_, index) => ({ id: `${zone}${index + 1}`, region, zone }));
    }),
  );
}

/** Whether the layout, every node up, has room for the spec: enough nodes in its regions, at
 *  most voterLossMax voters in any zone (survive zone or region) and any region (survive
 *  region), and survive region over three regions or more. Stated from the spec's meaning. */
export function layoutFits(spec: PlacementSpec, layout: ClusterLayout): boolean {
  const lossMax = voterLossMax(spec.replicas);
  if (spec.survive !== undefined && lossMax === 0) return false;
  if (spec.survive === 'region' && spec.regions.length < 3) return false;
  const zoneCap = spec.survive === undefined ? Number.POSITIVE_INFINITY : lossMax;
  const regionCap = spec.survive === 'region' ? lossMax : Number.POSITIVE_INFINITY;
  let room = 0;
  for (const region of spec.regions) {
    const zones = layout[region] ?? [];
    room += Math.min(regionCap, zones.reduce((total, size) => total + Math.min(zoneCap, size), 0));
  }
  return room >= spec.replicas;
}

/** Specs as operators might write them: 1 to 3 regions, 3 or 5 voters, survive region (over
 *  three regions), zone or nothing. A draw the layout cannot meet is weakened (survive one
 *  level less, then 3 voters) until it fits, so every one of them should be placed. */
export function drawSpecs(layout: ClusterLayout, count: number, seed: number): PlacementSpec[] {
  const random = seededRandom(seed);
  const regions = Object.keys(layout).sort();
  return Array.from({ length: count }, () => {
    const draw = random();
    const regionCount = Math.min(regions.length, draw < regionCountOdds[0] ? 1 : draw < regionCountOdds[1] ? 2 : 3);
    const chosen = pickDistinct(regions, regionCount, random).sort();
    const replicas = random() < 0.6 ? 3 : 5;
    const surviveDraw = random();
    const survive: FailureDomain | undefined = regionCount >= 3 && surviveDraw < 0.4 ? 'region' : surviveDraw < 0.7 ? 'zone' : undefined;
    const survives: (FailureDomain | undefined)[] = survive === 'region' ? ['region', 'zone', undefined] : survive === 'zone' ? ['zone', undefined] : [undefined];
    for (const voters of new Set([replicas, 3])) {
      for (const level of survives) {
        const spec: PlacementSpec = { regions: chosen, replicas: voters, survive: level };
        if (layoutFits(spec, layout)) return spec;
      }
    }
    throw new Error(`no spec over ${chosen.join(', ')} fits the layout ${JSON.stringify(layout)} (seed ${seed})`);
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

/** One run of the simulated reconciler, to convergence. */
export interface ReconcileRun {
  passes: number;
  /** The pass limit stopped it: some group still had a step to take. */
  passLimitReached: boolean;
  readonly changes: Record<MembershipStep['kind'], number>;
  /** Of the removals, those of voters (the rest are learners). */
  voterRemovals: number;
  readonly changesByApp: Map<string, number>;
  /** Smallest (voters - the floor: the target's count, or the group's own when below it) and
   *  (live voters - quorum) after any step; +Infinity when no step was taken. */
  voterMarginMin: number;
  liveMarginMin: number;
  /** app.step entries ControlState refused. */
  stepEntriesRefused: number;
  readonly violations: string[];
}

function emptyRun(): ReconcileRun {
  return {
    passes: 0,
    passLimitReached: false,
    changes: { addLearner: 0, promote: 0, remove: 0, transferLeader: 0 },
    voterRemovals: 0,
    changesByApp: new Map(),
    voterMarginMin: Number.POSITIVE_INFINITY,
    liveMarginMin: Number.POSITIVE_INFINITY,
    stepEntriesRefused: 0,
    violations: [],
  };
}

export class PlacementSim {
  readonly state = new ControlState();
  private logIndex = 0;
  /** Each founded app's group as its leader would report it; leader '' when it has none. */
  private readonly groups = new Map<string, Membership>();
  /** Nodes whose process has stopped: the simulation's truth, ahead of what the control state
   *  has been told through node.liveness. */
  private readonly dead = new Set<NodeId>();
  /** Which voter wins an election. */
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed ^ 0x1eade2);
  }

  /** Entries applied so far. */
  get entryCount(): number {
    return this.logIndex;
  }

  membership(app: string): Membership | undefined {
    return this.groups.get(app);
  }

  isDead(node: NodeId): boolean {
    return this.dead.has(node);
  }

  /** Commits one entry and applies it, as every control-plane member would. */
  propose(command: ControlCommand, actor: string): ApplyResult {
    this.logIndex += 1;
    return this.state.apply(this.logIndex, { at: simStartMs + this.logIndex * entryIntervalMs, actor, command }, emptyChanges());
  }

  registerNodes(layout: ClusterLayout): void {
    for (const node of layoutNodes(layout)) {
      const result = this.propose({ op: 'node.register', node: { id: node.id, region: node.region, zone: node.zone, httpUrl: `http://${node.id}.sim:9001`, grpcAddress: `${node.id}.sim:9002` } }, `node:${node.id}`);
      if (!result.ok) throw new Error(`register ${node.id} refused: ${result.reason}`);
    }
  }

  /** Deploys an app; once placed its group is founded with the target as its membership (a
   *  new group bootstraps there: nothing is moved) and a voter elected. */
  deploy(name: string, spec: PlacementSpec, bundle: Bundle): ApplyResult {
    const result = this.propose({ op: 'app.deploy', name, spec, bundle, allowBreaking: false, expectRevision: undefined }, 'operator');
    if (!result.ok) return result;
    const target = this.state.apps.get(name)!.target;
    this.groups.set(name, { voters: target.voters, learners: target.learners, leader: this.elect(target.voters) });
    const founded = this.propose({ op: 'app.founded', name }, 'control:reconciler');
    if (!founded.ok) throw new Error(`app.founded ${name} refused: ${founded.reason}`);
    return result;
  }

  /** The nodes' processes stop: every group that had its leader there, or has lost its quorum,
   *  elects again (or has no leader). The control state learns of it only through liveness. */
  kill(nodes: readonly NodeId[]): void {
    for (const node of nodes) this.dead.add(node);
    for (const [name, group] of this.groups) {
      if (!group.voters.some((voter) => this.dead.has(voter))) continue;
      const leaderLive = group.leader !== '' && !this.dead.has(group.leader);
      const hasQuorum = this.liveVoters(group) >= quorumOf(group.voters.length);
      if (!hasQuorum) this.groups.set(name, { ...group, leader: '' });
      else if (!leaderLive) this.groups.set(name, { ...group, leader: this.elect(group.voters) });
    }
  }

  /** What the liveness monitor proposes for each node. */
  markLiveness(nodes: readonly NodeId[], liveness: NodeLiveness): void {
    for (const node of nodes) {
      const result = this.propose({ op: 'node.liveness', id: node, liveness }, 'control:liveness');
      if (!result.ok) throw new Error(`node.liveness ${node} ${liveness} refused: ${result.reason}`);
    }
  }

  liveVoters(group: Membership): number {
    return group.voters.filter((voter) => !this.dead.has(voter)).length;
  }

  /** Passes of the reconciler until none takes a step: like the real one, each pass visits the
   *  apps by name and takes at most one step for each app whose group has a leader, with a node
   *  caught up when its process runs. Every step is checked as it commits. */
  reconcile(): ReconcileRun {
    const run = emptyRun();
    for (; run.passes < passCountMax; run.passes++) {
      let stepped = false;
      for (const name of [...this.state.apps.keys()].sort()) {
        const group = this.groups.get(name);
        if (group === undefined || group.leader === '') continue; // no leader to ask: the real reconciler waits too
        const step = nextStep(group, this.state.apps.get(name)!.target, (node) => !this.dead.has(node));
        if (step === undefined) continue;
        this.take(name, group, step, run);
        stepped = true;
      }
      if (!stepped) return run;
    }
    run.passLimitReached = true;
    return run;
  }

  private take(name: string, before: Membership, step: MembershipStep, run: ReconcileRun): void {
    const target = this.state.apps.get(name)!.target;
    const record = (outcome: 'started' | 'done', detail: string): void => {
      if (!this.propose({ op: 'app.step', name, step, outcome, detail }, 'control:reconciler').ok) run.stepEntriesRefused++;
    };
    record('started', describeStep(step));
    let after = membershipAfter(before, step);
    const where = `${name} ${describeStep(step)} (voters ${before.voters.join(',')}, target ${target.voters.join(',')})`;
    if (!stepApplied(step, after)) run.violations.push(`${where}: the step did not apply`);
    if (step.kind === 'remove' && step.node === before.leader) run.violations.push(`${where}: removes the group's leader`);
    if (step.kind === 'remove' && before.voters.includes(step.node)) run.voterRemovals++;
    const floor = Math.min(target.voters.length, before.voters.length);
    const live = this.liveVoters(after);
    const quorum = quorumOf(after.voters.length);
    run.voterMarginMin = Math.min(run.voterMarginMin, after.voters.length - floor);
    run.liveMarginMin = Math.min(run.liveMarginMin, live - quorum);
    if (after.voters.length < floor) run.violations.push(`${where}: ${after.voters.length} voters, fewer than ${floor}`);
    if (live < quorum) {
      run.violations.push(`${where}: ${live} live voters of ${after.voters.length}, below the quorum ${quorum}`);
      after = { ...after, leader: '' };
    }
    this.groups.set(name, after);
    run.changes[step.kind]++;
    run.changesByApp.set(name, (run.changesByApp.get(name) ?? 0) + 1);
    record('done', 'applied by the group');
  }

  /** A live voter, chosen by the seeded draw (any of them may win an election). */
  private elect(voters: readonly NodeId[]): NodeId {
    const live = voters.filter((voter) => !this.dead.has(voter));
    return live.length === 0 ? '' : live[Math.floor(this.random() * live.length)]!;
  }
}
