import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../src/model/ids.js';
import { diffPlacement, membershipAfter, membershipMatches, nextStep, place, placementsEqual, survivalOf } from '../../src/control/placement.js';
import type { CandidateNode, FailureDomain, Membership, MembershipStep, Placement, PlacementSpec } from '../../src/control/placement-types.js';
import { seededRandom } from '../support/seeded-random.js';

function node(id: NodeId, region: string, zone: string, voterLoad = 0, eligible = true): CandidateNode {
  return { id, region, zone, eligible, voterLoad };
}

/** `count` nodes named <region><index> in zones <region>-a, <region>-b, ... round robin. */
function regionNodes(region: string, count: number, zoneCount: number): CandidateNode[] {
  return Array.from({ length: count }, (_, index) => node(`${region}${index + 1}`, region, `${region}-${String.fromCharCode(97 + (index % zoneCount))}`));
}

function spec(regions: string[], replicas: number, survive?: FailureDomain): PlacementSpec {
  return { regions, replicas, survive };
}

function placed(result: ReturnType<typeof place>): Placement {
  if (!result.ok) throw new Error(`expected a placement, got the refusal: ${result.reason}`);
  return result.placement;
}

function refusal(result: ReturnType<typeof place>): string {
  if (result.ok) throw new Error(`expected a refusal, got voters ${result.placement.voters.join(', ')}`);
  return result.reason;
}

/** Voters per region (or per zone), in name order. */
function spread(placement: Placement, nodes: readonly CandidateNode[], by: 'region' | 'zone'): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const voter of placement.voters) {
    const found = nodes.find((candidate) => candidate.id === voter)!;
    const key = by === 'region' ? found.region : `${found.region}/${found.zone}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const cluster: CandidateNode[] = [...regionNodes('eu', 6, 3), ...regionNodes('us', 4, 2), ...regionNodes('ap', 3, 3)];

describe('place: spreading voters', () => {
  it('spreads 3 voters in one region over its zones, one a zone', () => {
    const placement = placed(place(spec(['eu'], 3), cluster, undefined));
    expect(spread(placement, cluster, 'zone')).toEqual({ 'eu/eu-a': 1, 'eu/eu-b': 1, 'eu/eu-c': 1 });
  });

  it('spreads voters over two regions 2+1 and 3+2, the extra to the region with more nodes', () => {
    expect(spread(placed(place(spec(['eu', 'us'], 3), cluster, undefined)), cluster, 'region')).toEqual({ eu: 2, us: 1 });
    expect(spread(placed(place(spec(['eu', 'us'], 5), cluster, undefined)), cluster, 'region')).toEqual({ eu: 3, us: 2 });
  });

  it('spreads voters over three regions 1+1+1 and 2+2+1', () => {
    expect(spread(placed(place(spec(['ap', 'eu', 'us'], 3), cluster, undefined)), cluster, 'region')).toEqual({ ap: 1, eu: 1, us: 1 });
    expect(spread(placed(place(spec(['ap', 'eu', 'us'], 5), cluster, undefined)), cluster, 'region')).toEqual({ ap: 1, eu: 2, us: 2 });
  });

  it('spreads a region share over distinct zones: 3 voters in 2 zones go 2+1, 5 in 3 zones 2+2+1', () => {
    expect(Object.values(spread(placed(place(spec(['us'], 3), cluster, undefined)), cluster, 'zone')).sort()).toEqual([1, 2]);
    expect(Object.values(spread(placed(place(spec(['eu'], 5), cluster, undefined)), cluster, 'zone')).sort()).toEqual([1, 2, 2]);
  });

  it('breaks a tie between regions of equal size by name', () => {
    const nodes = [...regionNodes('eu', 3, 3), ...regionNodes('us', 3, 3)];
    expect(spread(placed(place(spec(['eu', 'us'], 3), nodes, undefined)), nodes, 'region')).toEqual({ eu: 2, us: 1 });
  });

  it('gives the extra voter to the region already holding more current voters', () => {
    const nodes = [...regionNodes('eu', 3, 3), ...regionNodes('us', 5, 3)];
    const current: Placement = { voters: ['eu1', 'eu2', 'us1'], learners: [] };
    expect(spread(placed(place(spec(['eu', 'us'], 3), nodes, current)), nodes, 'region')).toEqual({ eu: 2, us: 1 });
    expect(spread(placed(place(spec(['eu', 'us'], 3), nodes, undefined)), nodes, 'region')).toEqual({ eu: 1, us: 2 });
  });

  it('fills the most even spread the nodes allow when a listed region is short', () => {
    const nodes = [...regionNodes('eu', 4, 2), ...regionNodes('us', 1, 1)];
    expect(spread(placed(place(spec(['ap', 'eu', 'us'], 3), nodes, undefined)), nodes, 'region')).toEqual({ eu: 2, us: 1 });
    expect(spread(placed(place(spec(['eu', 'us'], 5), nodes, undefined)), nodes, 'region')).toEqual({ eu: 4, us: 1 });
  });

  it('chooses the least-loaded nodes, ties by id', () => {
    const nodes = [node('n3', 'eu', 'a', 0), node('n1', 'eu', 'a', 5), node('n2', 'eu', 'a', 0), node('n4', 'eu', 'a', 1)];
    expect(placed(place(spec(['eu'], 2), nodes, undefined)).voters).toEqual(['n2', 'n3']);
  });

  it('evens out the load of zones of unequal size, placing one app after another', () => {
    // 2 voters an app over 3 zones: which two zones take them is the solver's choice, and the
    // 2-node zone must take fewer for its nodes to carry as much as the others'.
    const zoneNodes = (zone: string, count: number) => Array.from({ length: count }, (_, index) => node(`${zone}${index + 1}`, 'eu', zone));
    let nodes = [...zoneNodes('a', 2), ...zoneNodes('b', 4), ...zoneNodes('c', 4)];
    for (let app = 0; app < 50; app++) {
      const voters = new Set(placed(place(spec(['eu'], 2), nodes, undefined)).voters);
      nodes = nodes.map((candidate) => (voters.has(candidate.id) ? { ...candidate, voterLoad: candidate.voterLoad + 1 } : candidate));
    }
    expect(nodes.map((candidate) => candidate.voterLoad)).toEqual(Array.from({ length: 10 }, () => 10));
  });

  it('makes every other eligible node of the regions a learner, and gives nodes elsewhere nothing', () => {
    const nodes = [...cluster, node('eu9', 'eu', 'eu-a', 0, false)];
    const placement = placed(place(spec(['us'], 3), nodes, undefined));
    expect([...placement.voters, ...placement.learners].sort()).toEqual(['us1', 'us2', 'us3', 'us4']);
    expect(placement.learners).toHaveLength(1);
    expect(placed(place(spec(['eu'], 3), nodes, undefined)).learners).not.toContain('eu9');
  });

  it('reports the survival of what it placed', () => {
    const result = place(spec(['ap', 'eu', 'us'], 3), cluster, undefined);
    expect(result.ok && result.survival.survives).toBe('region');
  });

  it('is deterministic: the order of the node list does not matter', () => {
    const random = seededRandom(7);
    const shuffled = [...cluster].sort(() => random() - 0.5);
    for (const replicas of [1, 3, 5]) {
      expect(place(spec(['eu', 'us'], replicas), shuffled, undefined)).toEqual(place(spec(['eu', 'us'], replicas), cluster, undefined));
    }
  });
});

describe('place: stickiness', () => {
  it('keeps a current voter that is still eligible, even when it is more loaded than others', () => {
    const nodes = [node('n1', 'eu', 'a', 9), node('n2', 'eu', 'b', 0), node('n3', 'eu', 'c', 0), node('n4', 'eu', 'a', 0)];
    const current: Placement = { voters: ['n1', 'n2', 'n3'], learners: ['n4'] };
    expect(placed(place(spec(['eu'], 3), nodes, current))).toEqual(current);
  });

  it('replaces a voter that went down with exactly one new voter, in its zone', () => {
    const current = placed(place(spec(['eu', 'us'], 5), cluster, undefined));
    const down = current.voters[1]!;
    const nodes = cluster.map((candidate) => (candidate.id === down ? { ...candidate, eligible: false } : candidate));
    const next = placed(place(spec(['eu', 'us'], 5), nodes, current));
    const added = next.voters.filter((voter) => !current.voters.includes(voter));
    expect(added).toHaveLength(1);
    expect(next.voters.filter((voter) => current.voters.includes(voter))).toHaveLength(4);
    const zoneOf = (id: NodeId) => cluster.find((candidate) => candidate.id === id)!.zone;
    expect(zoneOf(added[0]!)).toBe(zoneOf(down));
  });

  it('moves only as many current voters as the even spread needs', () => {
    const nodes = [...regionNodes('eu', 3, 3), ...regionNodes('us', 3, 3)];
    const current: Placement = { voters: ['eu1', 'eu2', 'eu3'], learners: [] };
    const next = placed(place(spec(['eu', 'us'], 3), nodes, current));
    expect(next.voters.filter((voter) => current.voters.includes(voter))).toHaveLength(2);
    expect(spread(next, nodes, 'region')).toEqual({ eu: 2, us: 1 });
  });

  it('ignores current voters outside the spec regions', () => {
    const current: Placement = { voters: ['eu1', 'eu2', 'eu3'], learners: [] };
    expect(placed(place(spec(['us'], 3), cluster, current)).voters.every((voter) => voter.startsWith('us'))).toBe(true);
  });
});

describe('place: survive', () => {
  it('spreads 5 voters to survive a region as 2+2+1', () => {
    const result = place(spec(['ap', 'eu', 'us'], 5, 'region'), cluster, undefined);
    expect(result.ok && result.survival.survives).toBe('region');
  });

  it('moves a voter away from an even region spread when only that keeps every zone below a majority', () => {
    // eu has one zone: 2 voters there would be a majority that one zone failure takes.
    const nodes = [node('eu1', 'eu', 'z', 0), node('eu2', 'eu', 'z', 0), node('eu3', 'eu', 'z', 0), ...regionNodes('us', 3, 3)];
    const result = place(spec(['eu', 'us'], 3, 'zone'), nodes, undefined);
    expect(result.ok && spread(result.placement, nodes, 'region')).toEqual({ eu: 1, us: 2 });
    expect(result.ok && result.survival.survives).toBe('zone');
  });
});

describe('place: refusals, all or nothing, with a reason to act on', () => {
  it('refuses a spec without regions', () => {
    expect(refusal(place(spec([], 3), cluster, undefined))).toBe('the spec lists no regions: name at least one region to place the app in');
  });

  it('refuses replicas below 1, above 7 or not whole', () => {
    for (const replicas of [0, 8, 2.5]) {
      expect(refusal(place(spec(['eu'], replicas), cluster, undefined))).toBe(`replicas must be a whole number from 1 to 7; the spec asks for ${replicas}`);
    }
  });

  it('refuses fewer eligible nodes than replicas, naming how many each region has', () => {
    const nodes = [node('eu1', 'eu', 'a'), node('eu2', 'eu', 'b', 0, false), node('us1', 'us', 'a'), node('ap1', 'ap', 'a')];
    expect(refusal(place(spec(['eu', 'us'], 3), nodes, undefined))).toBe('3 voters need 3 eligible nodes in eu, us; there are 2 (eu: 1, us: 1)');
  });

  it('refuses survive region with fewer than 3 regions', () => {
    expect(refusal(place(spec(['eu', 'us'], 3, 'region'), cluster, undefined))).toBe(
      'surviving the loss of a region needs voters in at least 3 regions; the spec lists 2 (eu, us)',
    );
  });

  it('refuses survive with too few voters to lose one', () => {
    expect(refusal(place(spec(['eu'], 2, 'zone'), cluster, undefined))).toBe(
      'surviving the loss of a zone needs at least 3 voters; 2 voters lose the quorum with any one of them',
    );
  });

  it('refuses survive region when the voters cannot be spread without a region holding a majority', () => {
    const nodes = [...regionNodes('eu', 4, 2), node('us1', 'us', 'a'), node('ap1', 'ap', 'a')];
    expect(refusal(place(spec(['ap', 'eu', 'us'], 5, 'region'), nodes, undefined))).toBe(
      'surviving the loss of a region with 5 voters needs at most 2 per region; ap, eu, us can take 4 (ap: 1 in 1 zone, eu: 2 in 2 zones, us: 1 in 1 zone): ' +
        'add eligible nodes to the short regions or list another region',
    );
  });

  it('refuses survive zone when no spread keeps every zone below a majority', () => {
    const nodes = [node('eu1', 'eu', 'a'), node('eu2', 'eu', 'a'), node('eu3', 'eu', 'b')];
    expect(refusal(place(spec(['eu'], 3, 'zone'), nodes, undefined))).toBe(
      'surviving the loss of a zone with 3 voters needs at most 1 per zone; eu can take 2 (eu: 2 in 2 zones): add eligible nodes in more zones',
    );
  });
});

describe('survivalOf', () => {
  const nodes = [node('e1', 'eu', 'a'), node('e2', 'eu', 'b'), node('e3', 'eu', 'b'), node('u1', 'us', 'a'), node('a1', 'ap', 'a')];

  it('says region when losing any one region leaves a majority', () => {
    expect(survivalOf({ voters: ['a1', 'e1', 'u1'], learners: [] }, nodes)).toEqual({
      survives: 'region',
      reason: 'voters in ap (1), eu (1), us (1): losing any one region does not lose the quorum',
    });
  });

  it('says zone when a region holds a majority but no zone does', () => {
    expect(survivalOf({ voters: ['e1', 'e2', 'u1'], learners: [] }, nodes)).toEqual({
      survives: 'zone',
      reason: 'voters in eu (2), us (1): losing eu loses the quorum; losing any one zone does not',
    });
  });

  it('says node when a zone holds a majority of three or more voters', () => {
    expect(survivalOf({ voters: ['e2', 'e3', 'u1'], learners: [] }, nodes)).toEqual({
      survives: 'node',
      reason: 'voters in eu (2), us (1): losing eu loses the quorum; losing zone b of eu does too; losing any one node does not',
    });
  });

  it('says none for one or two voters', () => {
    expect(survivalOf({ voters: ['e1'], learners: ['e2'] }, nodes)).toEqual({
      survives: 'none',
      reason: 'voters in eu (1): losing eu loses the quorum; losing zone a of eu does too; losing e1 does too',
    });
    expect(survivalOf({ voters: ['e1', 'u1'], learners: [] }, nodes).survives).toBe('none');
    expect(survivalOf({ voters: [], learners: [] }, nodes).survives).toBe('none');
  });
});

interface Walk {
  readonly steps: MembershipStep[];
  readonly voterCounts: number[];
  readonly final: Membership;
}

/** Walks nextStep to the target (or `stepsMax`), checking that no step removes the leader. When
 *  there is no step but the target is not reached, the group waits: `catchUp` lets time pass. */
function walk(start: Membership, target: Placement, caughtUp: (node: NodeId) => boolean = () => true, stepsMax = 100, catchUp?: (membership: Membership) => void): Walk {
  const steps: MembershipStep[] = [];
  const voterCounts = [start.voters.length];
  let membership = start;
  const next = (): MembershipStep | undefined => {
    const step = nextStep(membership, target, caughtUp);
    if (step !== undefined || catchUp === undefined || membershipMatches(membership, target)) return step;
    catchUp(membership);
    return nextStep(membership, target, caughtUp);
  };
  for (let step = next(); step !== undefined; step = next()) {
    if (step.kind === 'remove' && step.node === membership.leader) throw new Error(`step ${steps.length} removes the leader ${step.node}`);
    steps.push(step);
    membership = membershipAfter(membership, step);
    voterCounts.push(membership.voters.length);
    if (steps.length > stepsMax) throw new Error(`no end after ${stepsMax} steps: ${JSON.stringify(steps)}`);
  }
  return { steps, voterCounts, final: membership };
}

describe('nextStep', () => {
  const target: Placement = { voters: ['n1', 'n2', 'n4'], learners: ['n5'] };

  it('has no step when the membership is the target', () => {
    expect(nextStep({ voters: ['n1', 'n2', 'n4'], learners: ['n5'], leader: 'n1' }, target, () => true)).toBeUndefined();
  });

  it('replaces a voter by adding the new one as a learner, promoting it, then removing the old one', () => {
    const result = walk({ voters: ['n1', 'n2', 'n3'], learners: ['n5'], leader: 'n1' }, target);
    expect(result.steps).toEqual([
      { kind: 'addLearner', node: 'n4' },
      { kind: 'promote', node: 'n4' },
      { kind: 'remove', node: 'n3' },
    ]);
    expect(Math.min(...result.voterCounts)).toBe(3);
  });

  it('hands leadership to a voter that stays before removing the leader', () => {
    const result = walk({ voters: ['n1', 'n2', 'n3'], learners: ['n5'], leader: 'n3' }, target);
    expect(result.steps).toEqual([
      { kind: 'addLearner', node: 'n4' },
      { kind: 'promote', node: 'n4' },
      { kind: 'transferLeader', node: 'n3', to: 'n1' },
      { kind: 'remove', node: 'n3' },
    ]);
    expect(result.final.leader).toBe('n1');
  });

  it('waits for a learner to catch up and removes no voter meanwhile, while learners still move', () => {
    const actual: Membership = { voters: ['n1', 'n2', 'n3'], learners: ['n4', 'n6'], leader: 'n1' };
    const lagging = (node: NodeId) => node !== 'n4';
    expect(nextStep(actual, target, lagging)).toEqual({ kind: 'addLearner', node: 'n5' });
    const withLearner = membershipAfter(actual, { kind: 'addLearner', node: 'n5' });
    expect(nextStep(withLearner, target, lagging)).toEqual({ kind: 'remove', node: 'n6' });
    const waiting = membershipAfter(withLearner, { kind: 'remove', node: 'n6' });
    expect(nextStep(waiting, target, lagging)).toBeUndefined();
    expect(membershipMatches(waiting, target)).toBe(false);
  });

  it('adds a new learner node, and removes a learner that no longer hosts the app', () => {
    const voters = ['n1', 'n2', 'n4'];
    expect(walk({ voters, learners: [], leader: 'n1' }, target).steps).toEqual([{ kind: 'addLearner', node: 'n5' }]);
    expect(walk({ voters, learners: ['n5', 'n7'], leader: 'n1' }, target).steps).toEqual([{ kind: 'remove', node: 'n7' }]);
  });

  it('grows 3 to 5 voters by learners promoted one by one', () => {
    const result = walk({ voters: ['n1', 'n2', 'n3'], learners: [], leader: 'n1' }, { voters: ['n1', 'n2', 'n3', 'n4', 'n5'], learners: [] });
    expect(result.steps.map((step) => step.kind)).toEqual(['addLearner', 'addLearner', 'promote', 'promote']);
    expect(result.voterCounts).toEqual([3, 3, 3, 4, 5]);
  });

  it('shrinks 5 to 3 voters, the two that leave staying on as learners', () => {
    const result = walk({ voters: ['n1', 'n2', 'n3', 'n4', 'n5'], learners: [], leader: 'n5' }, { voters: ['n1', 'n2', 'n3'], learners: ['n4', 'n5'] });
    expect(result.steps).toEqual([
      { kind: 'remove', node: 'n4' },
      { kind: 'transferLeader', node: 'n5', to: 'n1' },
      { kind: 'remove', node: 'n5' },
      { kind: 'addLearner', node: 'n4' },
      { kind: 'addLearner', node: 'n5' },
    ]);
    expect(result.voterCounts).toEqual([5, 4, 4, 3, 3, 3]);
  });

  it('removes a lagging voter (most likely the one down) before one that is caught up', () => {
    const actual: Membership = { voters: ['n1', 'n2', 'n3', 'n4'], learners: [], leader: 'n1' };
    expect(nextStep(actual, { voters: ['n1', 'n2'], learners: [] }, (node) => node !== 'n4')).toEqual({ kind: 'remove', node: 'n4' });
  });

  it('never removes the last voter, whatever the target', () => {
    expect(nextStep({ voters: ['n1'], learners: [], leader: 'n1' }, { voters: [], learners: [] }, () => true)).toBeUndefined();
  });

  it('walks from random memberships to random targets, in bounded steps, never below the smaller voter count', () => {
    const ids = Array.from({ length: 9 }, (_, index) => `n${index + 1}`);
    for (let seed = 1; seed <= 300; seed++) {
      const random = seededRandom(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const subsets = (voterCountMax: number): Placement => {
        const shuffled = [...ids].sort(() => random() - 0.5);
        const voterCount = 1 + Math.floor(random() * voterCountMax);
        const learnerCount = Math.floor(random() * (ids.length - voterCount + 1));
        return { voters: shuffled.slice(0, voterCount).sort(), learners: shuffled.slice(voterCount, voterCount + learnerCount).sort() };
      };
      const from = subsets(5);
      const target = subsets(7);
      const actual: Membership = { ...from, leader: random() < 0.2 ? '' : pick(from.voters) };
      // Some nodes lag; when the walk has nothing to do but wait, the lagging learners catch up.
      const lagging = new Set(ids.filter(() => random() < 0.3));
      const stepsMax = (from.voters.length + from.learners.length + target.voters.length + target.learners.length) * 2;
      const context = `seed ${seed}: ${JSON.stringify(actual)} -> ${JSON.stringify(target)}, lagging ${[...lagging].join(',')}`;
      const result = walk(actual, target, (node) => !lagging.has(node), stepsMax, (membership) => {
        for (const learner of membership.learners) lagging.delete(learner);
      });
      expect(membershipMatches(result.final, target), context).toBe(true);
      expect(result.steps.length, context).toBeLessThanOrEqual(stepsMax);
      expect(Math.min(...result.voterCounts), context).toBeGreaterThanOrEqual(Math.min(from.voters.length, target.voters.length));
    }
  });
});

describe('diffPlacement and placementsEqual', () => {
  it('lists per node what changes, in node order', () => {
    const current: Placement = { voters: ['n1', 'n2', 'n3'], learners: ['n4', 'n5'] };
    const target: Placement = { voters: ['n1', 'n4', 'n6'], learners: ['n2', 'n7'] };
    expect(diffPlacement(current, target)).toEqual([
      { node: 'n2', from: 'voter', to: 'learner', change: 'demote' },
      { node: 'n3', from: 'voter', to: 'none', change: 'remove' },
      { node: 'n4', from: 'learner', to: 'voter', change: 'promote' },
      { node: 'n5', from: 'learner', to: 'none', change: 'remove' },
      { node: 'n6', from: 'none', to: 'voter', change: 'addVoter' },
      { node: 'n7', from: 'none', to: 'learner', change: 'addLearner' },
    ]);
    expect(diffPlacement(undefined, { voters: ['n1'], learners: [] })).toEqual([{ node: 'n1', from: 'none', to: 'voter', change: 'addVoter' }]);
    expect(diffPlacement(current, current)).toEqual([]);
  });

  it('compares placements as sets', () => {
    expect(placementsEqual({ voters: ['n2', 'n1'], learners: [] }, { voters: ['n1', 'n2'], learners: [] })).toBe(true);
    expect(placementsEqual({ voters: ['n1'], learners: ['n2'] }, { voters: ['n1', 'n2'], learners: [] })).toBe(false);
  });
});
