// The vocabulary of placement: what an operator asks for (a spec), what the solver knows of a
// node, what it answers (a placement: voters and learners of one app's group) and the single
// membership changes that move a group from what it is to what it should be. Pure data.
import type { NodeId } from '../model/ids.js';

/** Which whole failure an app's voters are spread to outlive. */
export type FailureDomain = 'zone' | 'region';

export interface PlacementSpec {
  /** Regions the app lives in; nodes elsewhere host nothing of it. Sorted, no duplicates. */
  readonly regions: readonly string[];
  /** Voters of the app's group (the rest of the regions' nodes are learners). */
  readonly replicas: number;
  /** Refuse a placement whose voters would not outlive the loss of one such domain. */
  readonly survive: FailureDomain | undefined;
}

/** A node as the solver sees it. */
export interface CandidateNode {
  readonly id: NodeId;
  readonly region: string;
  /** A node started without --zone is its own zone (named after the node). */
  readonly zone: string;
  /** Up (or suspect while it already holds a replica of this app) and not draining. */
  readonly eligible: boolean;
  /** Voters it holds for other apps: the solver spreads voters to the least loaded. */
  readonly voterLoad: number;
}

export interface Placement {
  /** Sorted. */
  readonly voters: readonly NodeId[];
  /** Sorted; disjoint from voters. */
  readonly learners: readonly NodeId[];
}

export type Survival = 'region' | 'zone' | 'node' | 'none';

export interface SurvivalReport {
  /** The largest failure the voters outlive: a whole region, a whole zone, one node, nothing. */
  readonly survives: Survival;
  /** Why, in words an operator reads: "voters in eu (2), us (1): losing eu loses the quorum". */
  readonly reason: string;
}

export type PlacementResult =
  | { readonly ok: true; readonly placement: Placement; readonly survival: SurvivalReport }
  | { readonly ok: false; readonly reason: string };

/** A group's membership as its leader reports it. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** '' when the group has no known leader. */
  readonly leader: NodeId;
}

/** One safe membership change (a single-node change, never a joint one). */
export type MembershipStep =
  | { readonly kind: 'addLearner'; readonly node: NodeId }
  | { readonly kind: 'promote'; readonly node: NodeId }
  | { readonly kind: 'remove'; readonly node: NodeId }
  /** The leader is to be removed: hand leadership to a voter that stays, first. */
  | { readonly kind: 'transferLeader'; readonly node: NodeId; readonly to: NodeId };

/** What a node is in one app's group. */
export type NodeRole = 'voter' | 'learner' | 'none';

/** How one node's role changes between two placements, for a plan an operator reads before a
 *  deploy (`clusterctl deploy --plan`). `change` names the move; `from` and `to` spell it out. */
export interface RoleChange {
  readonly node: NodeId;
  readonly from: NodeRole;
  readonly to: NodeRole;
  readonly change: 'addVoter' | 'addLearner' | 'promote' | 'demote' | 'remove';
}
