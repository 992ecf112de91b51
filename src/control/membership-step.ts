// How a group moves from the membership it has to the placement it should have: one safe,
// single-node change at a time, which the control loop proposes, waits for, and asks again.
// Grow before shrink: a new voter joins as a learner, is promoted once it has caught up, and
// only then does the voter it replaces leave, so the voter count never drops below the target's
// during a move and a leader is never removed (it hands over first).
import type { NodeId } from '../model/ids.js';
import type { Membership, MembershipStep, NodeRole, Placement, RoleChange } from './placement-types.js';
import { compareIds, sameIds, sortedIds } from './id-order.js';

/** A group keeps at least one voter whatever the target says: with none it cannot commit. */
const votersMin = 1;

/**
 * The next change from `actual` to `target`, or undefined when there is none to make now: either
 * the group is at the target (`membershipMatches`) or it waits for a learner to catch up before
 * that learner can be promoted. `caughtUp` says whether a node's log is close to the leader's.
 */
export function nextStep(actual: Membership, target: Placement, caughtUp: (node: NodeId) => boolean): MembershipStep | undefined {
  const actualVoters = new Set(actual.voters);
  const actualLearners = new Set(actual.learners);
  const targetVoters = new Set(target.voters);
  const hosted = (node: NodeId): boolean => actualVoters.has(node) || actualLearners.has(node);

  const newcomer = sortedIds(targetVoters).find((node) => !hosted(node));
  if (newcomer !== undefined) return { kind: 'addLearner', node: newcomer };
  const ready = sortedIds(targetVoters).find((node) => actualLearners.has(node) && caughtUp(node));
  if (ready !== undefined) return { kind: 'promote', node: ready };

  const leaving = leavingVoter(actual, targetVoters, caughtUp);
  if (leaving !== undefined) return leaving;

  const targetLearners = new Set(target.learners);
  const newLearner = sortedIds(targetLearners).find((node) => !hosted(node));
  if (newLearner !== undefined) return { kind: 'addLearner', node: newLearner };
  const strayLearner = sortedIds(actualLearners).find((node) => !targetVoters.has(node) && !targetLearners.has(node));
  if (strayLearner !== undefined) return { kind: 'remove', node: strayLearner };
  return undefined;
}

/** The removal of a voter the target does not keep, once the group has more voters than the
 *  target (so its replacement, if any, is already promoted). A voter that lags goes first: it is
 *  most likely the one that is down, and removing it restores the margin soonest. The leader goes
 *  last, and hands leadership to a voter that stays before it does. */
function leavingVoter(actual: Membership, targetVoters: ReadonlySet<NodeId>, caughtUp: (node: NodeId) => boolean): MembershipStep | undefined {
  if (actual.voters.length <= Math.max(targetVoters.size, votersMin)) return undefined;
  const leaving = actual.voters.filter((node) => !targetVoters.has(node));
  const rank = (node: NodeId): number => (node === actual.leader ? 2 : caughtUp(node) ? 1 : 0);
  const first = leaving.sort((a, b) => rank(a) - rank(b) || compareIds(a, b))[0];
  if (first === undefined) return undefined;
  if (first !== actual.leader) return { kind: 'remove', node: first };
  // More voters than the target, and the leader the only one leaving: the others all stay.
  const staying = sortedIds(actual.voters.filter((node) => targetVoters.has(node)));
  const to = staying.find(caughtUp) ?? staying[0];
  if (to === undefined) return undefined;
  return { kind: 'transferLeader', node: first, to };
}

/** The membership once `step` has committed: what the group reports after applying the change.
 *  For a simulation or a plan; the group's leader stays the source of truth for the real one. */
export function membershipAfter(membership: Membership, step: MembershipStep): Membership {
  if (step.kind === 'transferLeader') return { ...membership, leader: step.to };
  const voters = new Set(membership.voters);
  const learners = new Set(membership.learners);
  if (step.kind === 'addLearner') learners.add(step.node);
  if (step.kind === 'promote' && learners.delete(step.node)) voters.add(step.node);
  if (step.kind === 'remove') {
    voters.delete(step.node);
    learners.delete(step.node);
  }
  return { voters: sortedIds(voters), learners: sortedIds(learners), leader: membership.leader };
}

/** Whether the group's membership is the target's (the leader does not matter). */
export function membershipMatches(actual: Placement, target: Placement): boolean {
  return sameIds(actual.voters, target.voters) && sameIds(actual.learners, target.learners);
}

/** What changes, node by node, from `current` (a placement or a group's membership; undefined for
 *  an app not placed yet) to `target`; nodes whose role stays are left out. Sorted by node. */
export function diffPlacement(current: Placement | undefined, target: Placement): RoleChange[] {
  const from = roles(current);
  const to = roles(target);
  const changes: RoleChange[] = [];
  for (const node of sortedIds(new Set([...from.keys(), ...to.keys()]))) {
    const before = from.get(node) ?? 'none';
    const after = to.get(node) ?? 'none';
    if (before !== after) changes.push({ node, from: before, to: after, change: changeOf(before, after) });
  }
  return changes;
}

function roles(placement: Placement | undefined): Map<NodeId, NodeRole> {
  const result = new Map<NodeId, NodeRole>();
  for (const node of placement?.learners ?? []) result.set(node, 'learner');
  for (const node of placement?.voters ?? []) result.set(node, 'voter');
  return result;
}

function changeOf(from: NodeRole, to: NodeRole): RoleChange['change'] {
  if (to === 'none') return 'remove';
  if (to === 'voter') return from === 'learner' ? 'promote' : 'addVoter';
  return from === 'voter' ? 'demote' : 'addLearner';
}
