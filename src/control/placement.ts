// Where an app's replicas live: which eligible nodes of its regions vote in its group and which
// follow as learners. Pure and deterministic (no clock, no randomness, ties broken by name), so
// every member of the control group that applies the same inputs computes the same placement.
//
// Voters are spread in two levels, each as evenly as the nodes allow: over the spec's regions,
// then within a region over its zones. Within a zone the current voters stay (fewest membership
// changes) and the rest go to the least-loaded nodes. A `survive` spec is a cap on every domain:
// no region (or zone) may hold more voters than the group can lose, and a spread that cannot
// keep under the cap is refused as a whole, never placed half-way.
import type { NodeId } from '../model/ids.js';
import type { CandidateNode, Placement, PlacementResult, PlacementSpec } from './placement-types.js';
import { compareIds, sameIds } from './id-order.js';
import { meetsSurvival, survivalOf, voterLossMax } from './survival.js';

export { survivalOf } from './survival.js';
export { diffPlacement, membershipAfter, membershipMatches, nextStep } from './membership-step.js';

/** A group of one voter is allowed (a single-region dev app); it survives nothing. */
export const replicasMin = 1;
/** Every voter acknowledges every write: beyond seven, writes slow down and nothing is gained
 *  that learners (which serve reads) do not give. */
export const replicasMax = 7;
/** Outliving a whole region needs a third region to break the tie between two halves. */
export const regionSurvivalRegionsMin = 3;

/** A broken invariant of the solver: a programmer error, never an operator's. */
export class PlacementInvariantError extends Error {
  constructor(message: string) {
    super(`placement invariant violated: ${message}`);
  }
}

/** A zone's eligible nodes, in the order they take this app's voters. */
interface ZoneSlot {
  readonly zone: string;
  /** Current voters first (they stay), then by voterLoad, then by id. */
  readonly nodes: readonly CandidateNode[];
  readonly currentVoters: number;
  /** Voters it may take: its nodes, or fewer under a zone cap. */
  readonly capacity: number;
}

interface RegionSlot {
  readonly region: string;
  readonly zones: readonly ZoneSlot[];
  readonly eligibleCount: number;
  readonly currentVoters: number;
  readonly capacity: number;
}

export function place(spec: PlacementSpec, nodes: readonly CandidateNode[], current: Placement | undefined): PlacementResult {
  const regions = [...new Set(spec.regions)].sort();
  const refusal = refuseSpec(spec, regions);
  if (refusal !== undefined) return { ok: false, reason: refusal };

  const lossMax = voterLossMax(spec.replicas);
  const regionCap = spec.survive === 'region' ? lossMax : Number.POSITIVE_INFINITY;
  // Outliving a region implies outliving a zone (zones lie within regions), so both caps hold.
  const zoneCap = spec.survive === undefined ? Number.POSITIVE_INFINITY : lossMax;
  const slots = regionSlots(regions, nodes, new Set(current?.voters ?? []), regionCap, zoneCap);

  const eligibleCount = sum(slots.map((slot) => slot.eligibleCount));
  if (eligibleCount < spec.replicas) {
    const perRegion = slots.map((slot) => `${slot.region}: ${slot.eligibleCount}`).join(', ');
    return { ok: false, reason: `${spec.replicas} voters need ${spec.replicas} eligible nodes in ${regions.join(', ')}; there are ${eligibleCount} (${perRegion})` };
  }
  if (sum(slots.map((slot) => slot.capacity)) < spec.replicas) return { ok: false, reason: capRefusal(spec, slots, lossMax) };

  const voters = chooseVoters(slots, spec.replicas);
  const chosen = new Set(voters);
  const learners = slots.flatMap((slot) => slot.zones.flatMap((zone) => zone.nodes.map((node) => node.id))).filter((id) => !chosen.has(id));
  const placement: Placement = { voters: voters.sort(compareIds), learners: learners.sort(compareIds) };
  const survival = survivalOf(placement, nodes);
  if (!meetsSurvival(survival.survives, spec.survive)) {
    throw new PlacementInvariantError(`spread for survive ${spec.survive} gave ${survival.survives}: ${survival.reason}`);
  }
  return { ok: true, placement, survival };
}

export function placementsEqual(a: Placement, b: Placement): boolean {
  return sameIds(a.voters, b.voters) && sameIds(a.learners, b.learners);
}

/** The refusals that the spec alone decides, before any node is looked at. */
function refuseSpec(spec: PlacementSpec, regions: readonly string[]): string | undefined {
  if (regions.length === 0) return 'the spec lists no regions: name at least one region to place the app in';
  if (!Number.isInteger(spec.replicas) || spec.replicas < replicasMin || spec.replicas > replicasMax) {
    return `replicas must be a whole number from ${replicasMin} to ${replicasMax}; the spec asks for ${spec.replicas}`;
  }
  if (spec.survive === 'region' && regions.length < regionSurvivalRegionsMin) {
    return `surviving the loss of a region needs voters in at least ${regionSurvivalRegionsMin} regions; the spec lists ${regions.length} (${regions.join(', ')})`;
  }
  if (spec.survive !== undefined && voterLossMax(spec.replicas) === 0) {
    return `surviving the loss of a ${spec.survive} needs at least 3 voters; ${spec.replicas} voter${spec.replicas === 1 ? '' : 's'} lose the quorum with any one of them`;
  }
  return undefined;
}

function capRefusal(spec: PlacementSpec, slots: readonly RegionSlot[], lossMax: number): string {
  const capacity = sum(slots.map((slot) => slot.capacity));
  const room = slots.map((slot) => `${slot.region}: ${slot.capacity} in ${slot.zones.length} zone${slot.zones.length === 1 ? '' : 's'}`).join(', ');
  const where = slots.map((slot) => slot.region).join(', ');
  const fix = spec.survive === 'region' ? 'add eligible nodes to the short regions or list another region' : 'add eligible nodes in more zones';
  return (
    `surviving the loss of a ${spec.survive} with ${spec.replicas} voters needs at most ${lossMax} per ${spec.survive}; ` +
    `${where} can take ${capacity} (${room}): ${fix}`
  );
}

function regionSlots(regions: readonly string[], nodes: readonly CandidateNode[], currentVoters: ReadonlySet<NodeId>, regionCap: number, zoneCap: number): RegionSlot[] {
  return regions.map((region) => {
    const byZone = new Map<string, CandidateNode[]>();
    for (const node of nodes) {
      if (node.region !== region || !node.eligible) continue;
      const zoneNodes = byZone.get(node.zone) ?? [];
      zoneNodes.push(node);
      byZone.set(node.zone, zoneNodes);
    }
    const zones = [...byZone.keys()].sort().map((zone): ZoneSlot => {
      const zoneNodes = byZone.get(zone)!.sort((a, b) => compareCandidates(a, b, currentVoters));
      const current = zoneNodes.filter((node) => currentVoters.has(node.id)).length;
      return { zone, nodes: zoneNodes, currentVoters: current, capacity: Math.min(zoneCap, zoneNodes.length) };
    });
    const eligibleCount = sum(zones.map((zone) => zone.nodes.length));
    const current = sum(zones.map((zone) => zone.currentVoters));
    return { region, zones, eligibleCount, currentVoters: current, capacity: Math.min(regionCap, sum(zones.map((zone) => zone.capacity))) };
  });
}

function chooseVoters(slots: readonly RegionSlot[], replicas: number): NodeId[] {
  const regionCounts = spreadEvenly(slots, replicas, (slot) => slot.capacity, preferRegion);
  return slots.flatMap((slot, index) => {
    const zoneCounts = zonesKeepingVoters(slot.zones, regionCounts[index]!);
    return slot.zones.flatMap((zone, zoneIndex) => zone.nodes.slice(0, zoneCounts[zoneIndex]).map((node) => node.id));
  });
}

/** How many of a region's `total` voters each zone holds: the current voters stay where they are
 *  as far as the zones' capacities (the survival limit per zone) allow - spread evenly when the
 *  region keeps fewer than it has - and only the voters beyond them are spread evenly. Spreading
 *  all of them anew would move a live voter from a zone to another just to even them out. */
function zonesKeepingVoters(zones: readonly ZoneSlot[], total: number): number[] {
  const kept = Math.min(total, sum(zones.map((zone) => Math.min(zone.currentVoters, zone.capacity))));
  const keeping = spreadEvenly(zones, kept, (zone) => Math.min(zone.currentVoters, zone.capacity), preferZone);
  return spreadEvenly(zones, total - kept, (zone) => zone.capacity, preferZone, keeping);
}

/** Hands out `total` voters one at a time, each to the bucket with the fewest so far that still
 *  has room; among those, to the one `prefer` ranks first. That is the most even spread the
 *  capacities allow (no bucket could take one more without another holding two fewer). */
function spreadEvenly<T>(
  buckets: readonly T[],
  total: number,
  capacityOf: (bucket: T) => number,
  prefer: (a: T, aCount: number, b: T, bCount: number) => number,
  start: readonly number[] = buckets.map(() => 0),
): number[] {
  const counts = [...start];
  for (let given = 0; given < total; given++) {
    let best = -1;
    for (let index = 0; index < buckets.length; index++) {
      const count = counts[index]!;
      if (count >= capacityOf(buckets[index]!)) continue;
      if (best === -1 || count < counts[best]! || (count === counts[best]! && prefer(buckets[index]!, count, buckets[best]!, counts[best]!) < 0)) best = index;
    }
    if (best === -1) throw new PlacementInvariantError(`${total} voters do not fit buckets checked to hold them`);
    counts[best]!++;
  }
  return counts;
}

/** Which region takes an extra voter that does not divide evenly: the one holding more current
 *  voters (fewer changes), then the larger one (more nodes to share the load), then by name. */
function preferRegion(a: RegionSlot, _aCount: number, b: RegionSlot, _bCount: number): number {
  return b.currentVoters - a.currentVoters || b.eligibleCount - a.eligibleCount || compareIds(a.region, b.region);
}

/** Which zone of a region takes an extra voter: the one whose next node is a current voter
 *  (it stays), then the one whose next node is least loaded, so that zones of unequal size
 *  still even out the load of their nodes, then the larger one, then by name. */
function preferZone(a: ZoneSlot, aCount: number, b: ZoneSlot, bCount: number): number {
  const aKeeps = aCount < a.currentVoters;
  const bKeeps = bCount < b.currentVoters;
  if (aKeeps !== bKeeps) return aKeeps ? -1 : 1;
  return a.nodes[aCount]!.voterLoad - b.nodes[bCount]!.voterLoad || b.nodes.length - a.nodes.length || compareIds(a.zone, b.zone);
}

function compareCandidates(a: CandidateNode, b: CandidateNode, currentVoters: ReadonlySet<NodeId>): number {
  const aStays = currentVoters.has(a.id);
  if (aStays !== currentVoters.has(b.id)) return aStays ? -1 : 1;
  return a.voterLoad - b.voterLoad || compareIds(a.id, b.id);
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
