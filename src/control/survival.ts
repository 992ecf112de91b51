// How large a failure an app's group outlives: a whole region, a whole zone, one node, or
// nothing. It is read from where the voters are, not from whether they are up: it describes the
// placement, so the solver can check its answer against the spec and an operator can see why a
// spec was refused or what an existing group risks.
import type { NodeId } from '../model/ids.js';
import type { CandidateNode, FailureDomain, Placement, Survival, SurvivalReport } from './placement-types.js';

/** Stands for the region and zone of a voter the node list does not know (a stale placement). */
export const unknownRegion = '(unknown)';

/** Voters that must acknowledge an entry: a majority. */
export function quorumOf(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** Voters the group can lose and still elect a leader and commit (0 for one or two voters). */
export function voterLossMax(voterCount: number): number {
  return Math.max(0, voterCount - quorumOf(voterCount));
}

const survivalRank: Record<Survival, number> = { none: 0, node: 1, zone: 2, region: 3 };

/** Whether a group that survives `survives` keeps what a spec asked for. */
export function meetsSurvival(survives: Survival, asked: FailureDomain | undefined): boolean {
  return asked === undefined || survivalRank[survives] >= survivalRank[asked];
}

/** A zone is named within its region: two regions may both have a zone "a". */
export function zoneLabel(region: string, zone: string): string {
  return `zone ${zone} of ${region}`;
}

interface Largest {
  readonly label: string;
  readonly count: number;
}

export function survivalOf(placement: Placement, nodes: readonly CandidateNode[]): SurvivalReport {
  const voterCount = placement.voters.length;
  if (voterCount === 0) return { survives: 'none', reason: 'no voters: the group cannot elect a leader' };
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const regionCounts = new Map<string, number>();
  const zoneCounts = new Map<string, number>();
  for (const voter of placement.voters) {
    const node = byId.get(voter);
    const region = node?.region ?? unknownRegion;
    const zone = zoneLabel(region, node?.zone ?? voter);
    regionCounts.set(region, (regionCounts.get(region) ?? 0) + 1);
    zoneCounts.set(zone, (zoneCounts.get(zone) ?? 0) + 1);
  }
  const lossMax = voterLossMax(voterCount);
  const regions = [...regionCounts.keys()].sort();
  const where = `voters in ${regions.map((region) => `${region} (${regionCounts.get(region)})`).join(', ')}`;
  const region = largest(regionCounts);
  if (region.count <= lossMax) return { survives: 'region', reason: `${where}: losing any one region does not lose the quorum` };
  const regionLoss = `losing ${region.label} loses the quorum`;
  const zone = largest(zoneCounts);
  if (zone.count <= lossMax) return { survives: 'zone', reason: `${where}: ${regionLoss}; losing any one zone does not` };
  const zoneLoss = `losing ${zone.label} does too`;
  if (lossMax >= 1) return { survives: 'node', reason: `${where}: ${regionLoss}; ${zoneLoss}; losing any one node does not` };
  return { survives: 'none', reason: `${where}: ${regionLoss}; ${zoneLoss}; ${nodeLoss(placement.voters)}` };
}

function nodeLoss(voters: readonly NodeId[]): string {
  if (voters.length === 1) return `losing ${voters[0]} does too`;
  return `losing any one of ${voters.join(', ')} does too (${voters.length} voters need all of them)`;
}

/** The domain holding the most voters; among equals the first by name, so reasons are stable. */
function largest(counts: ReadonlyMap<string, number>): Largest {
  let best: Largest = { label: '', count: 0 };
  for (const [label, count] of counts) {
    if (count > best.count || (count === best.count && label < best.label)) best = { label, count };
  }
  return best;
}
