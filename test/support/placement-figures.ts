// What the placement simulation (placement-sim.ts) measures and checks, read from the control
// state from the outside: how evenly voters load the nodes, whether a target keeps its spec,
// what a placement outlives counted by brute force, and the fewest membership changes a move
// could take. Nothing here calls the solver: each check states what the spec promises in its
// own words, so that it catches the solver, not agrees with it.
import type { Membership, Placement, PlacementSpec, Survival } from '../../src/control/placement-types.js';
import type { ControlState } from '../../src/control/state.js';
import { meetsSurvival, quorumOf } from '../../src/control/survival.js';
import type { NodeId } from '../../src/model/ids.js';

/** Where a node is, and whether it may host (up and not draining). */
export interface NodeSite {
  readonly id: NodeId;
  readonly region: string;
  readonly zone: string;
  readonly eligible: boolean;
}

export function nodeSites(state: ControlState): Map<NodeId, NodeSite> {
  const sites = new Map<NodeId, NodeSite>();
  for (const node of state.nodes.values()) {
    sites.set(node.id, { id: node.id, region: node.region, zone: node.zone ?? `node:${node.id}`, eligible: node.liveness === 'up' && node.drain === 'none' });
  }
  return sites;
}

export interface LoadFigures {
  /** 'all', or a region. */
  readonly scope: string;
  /** Apps whose spec lists the region: its demand, which the solver cannot move elsewhere. */
  readonly apps: number;
  readonly nodes: number;
  readonly min: number;
  readonly mean: number;
  readonly max: number;
  /** The largest |load - mean| of a node, over the mean. */
  readonly deviationRatioMax: number;
}

/** Voters per eligible node, from the apps' targets: overall and per region. The overall row
 *  cannot be even (a region's apps load only its nodes, and regions differ in size and demand);
 *  within a region the solver chooses freely, so that is where evenness is asked for. */
export function loadTable(state: ControlState, sites: ReadonlyMap<NodeId, NodeSite>): LoadFigures[] {
  const load = new Map<NodeId, number>();
  for (const app of state.apps.values()) for (const voter of app.target.voters) load.set(voter, (load.get(voter) ?? 0) + 1);
  const live = [...sites.values()].filter((site) => site.eligible);
  const loadsOf = (nodes: readonly NodeSite[]): number[] => nodes.map((site) => load.get(site.id) ?? 0);
  const rows = [loadFigures('all', state.apps.size, loadsOf(live))];
  for (const region of [...new Set(live.map((site) => site.region))].sort()) {
    const apps = [...state.apps.values()].filter((app) => app.spec.regions.includes(region)).length;
    rows.push(loadFigures(region, apps, loadsOf(live.filter((site) => site.region === region))));
  }
  return rows;
}

function loadFigures(scope: string, apps: number, loads: readonly number[]): LoadFigures {
  const mean = loads.reduce((total, load) => total + load, 0) / loads.length;
  const deviation = Math.max(...loads.map((load) => Math.abs(load - mean)));
  return { scope, apps, nodes: loads.length, min: Math.min(...loads), mean, max: Math.max(...loads), deviationRatioMax: mean === 0 ? 0 : deviation / mean };
}

/** What the voters outlive, found by losing every region, then every zone, then every node of
 *  the cluster in turn and counting the voters left against the quorum. */
export function survivalByBruteForce(placement: Placement, sites: ReadonlyMap<NodeId, NodeSite>): Survival {
  const voters = placement.voters;
  if (voters.length === 0) return 'none';
  const quorum = quorumOf(voters.length);
  const outlives = (lost: (site: NodeSite | undefined, voter: NodeId) => boolean): boolean => voters.filter((voter) => !lost(sites.get(voter), voter)).length >= quorum;
  const all = [...sites.values()];
  const regions = new Set(all.map((site) => site.region));
  if ([...regions].every((region) => outlives((site) => site?.region === region))) return 'region';
  const zones = new Set(all.map((site) => `${site.region}/${site.zone}`));
  if ([...zones].every((zone) => outlives((site) => site !== undefined && `${site.region}/${site.zone}` === zone))) return 'zone';
  if (all.every((lostSite) => outlives((_, voter) => voter === lostSite.id))) return 'node';
  return 'none';
}

/** How a target breaks its spec, or undefined: the voter count, the hosts (every eligible node of
 *  the spec's regions and no other), the survival asked for, and voters spread over the regions
 *  within one of each other. */
export function specProblem(spec: PlacementSpec, target: Placement, sites: ReadonlyMap<NodeId, NodeSite>): string | undefined {
  if (target.voters.length !== spec.replicas) return `${target.voters.length} voters, not ${spec.replicas}`;
  const hosts = [...target.voters, ...target.learners].sort();
  const expected = [...sites.values()].filter((site) => site.eligible && spec.regions.includes(site.region)).map((site) => site.id).sort();
  if (hosts.join() !== expected.join()) return `hosts ${hosts.join(',')} are not the eligible nodes of ${spec.regions.join(', ')}`;
  const survival = survivalByBruteForce(target, sites);
  if (!meetsSurvival(survival, spec.survive)) return `survives ${survival}, asked ${spec.survive}`;
  const regionsWithRoom = spec.regions.filter((region) => expected.some((id) => sites.get(id)!.region === region));
  const perRegion = regionsWithRoom.map((region) => target.voters.filter((voter) => sites.get(voter)!.region === region).length);
  if (Math.max(...perRegion) - Math.min(...perRegion) > 1) return `voters spread ${perRegion.join('+')} over ${regionsWithRoom.join(', ')}`;
  return undefined;
}

/** The fewest single-node steps (addLearner, promote, remove, transferLeader) that take `actual`
 *  to `target`: a new voter is promoted (added as a learner first unless it is one), a voter
 *  that leaves is removed (and added back if the target keeps it as a learner: there is no
 *  demotion step), a new learner added, a stray one removed, and a leader that leaves hands
 *  over first. */
export function changesMin(actual: Membership, target: Placement): number {
  const actualVoters = new Set(actual.voters);
  const actualLearners = new Set(actual.learners);
  const targetVoters = new Set(target.voters);
  const targetLearners = new Set(target.learners);
  let changes = 0;
  for (const voter of targetVoters) if (!actualVoters.has(voter)) changes += actualLearners.has(voter) ? 1 : 2;
  for (const voter of actualVoters) if (!targetVoters.has(voter)) changes += targetLearners.has(voter) ? 2 : 1;
  for (const learner of targetLearners) if (!actualVoters.has(learner) && !actualLearners.has(learner)) changes += 1;
  for (const learner of actualLearners) if (!targetVoters.has(learner) && !targetLearners.has(learner)) changes += 1;
  if (actual.leader !== '' && actualVoters.has(actual.leader) && !targetVoters.has(actual.leader)) changes += 1;
  return changes;
}

export function surviveCounts(): Record<Survival, number> {
  return { region: 0, zone: 0, node: 0, none: 0 };
}
