// The cluster as the placement simulation sees it, and nothing more: nodes (where they are,
// whether they may host), and per app its spec, its target placement and its group's actual
// membership. It stands in for the control state machine (src/control/state.ts), which will own
// this state for real: the driver (placement-scale.ts) reads and changes it only through the
// methods below, so the state machine can take this class's place behind the same calls.
import type { CandidateNode, Membership, MembershipStep, Placement, PlacementSpec } from '../src/control/placement-types.js';
import { membershipAfter } from '../src/control/membership-step.js';
import { quorumOf } from '../src/control/survival.js';
import type { NodeId } from '../src/model/ids.js';

export interface SimNode {
  readonly id: NodeId;
  readonly region: string;
  readonly zone: string;
}

export interface SimApp {
  readonly name: string;
  readonly spec: PlacementSpec;
  target: Placement;
  membership: Membership;
}

export class SimCluster {
  private readonly nodesById = new Map<NodeId, SimNode>();
  private readonly ineligible = new Set<NodeId>();
  private readonly appsByName = new Map<string, SimApp>();
  /** Voters each node holds over all apps, kept in step with every membership change. */
  private readonly voterLoads = new Map<NodeId, number>();

  constructor(nodes: readonly SimNode[]) {
    for (const node of nodes) {
      this.nodesById.set(node.id, node);
      this.voterLoads.set(node.id, 0);
    }
  }

  nodes(): SimNode[] {
    return [...this.nodesById.values()];
  }

  apps(): SimApp[] {
    return [...this.appsByName.values()];
  }

  isEligible(node: NodeId): boolean {
    return !this.ineligible.has(node);
  }

  voterLoad(node: NodeId): number {
    return this.voterLoads.get(node) ?? 0;
  }

  /** The nodes as the solver sees them for one app (its own voters do not count in their load),
   *  or for none. */
  candidatesFor(app?: string): CandidateNode[] {
    const ownVoters = new Set(app === undefined ? [] : (this.appsByName.get(app)?.membership.voters ?? []));
    return this.nodes().map((node) => ({
      ...node,
      eligible: this.isEligible(node.id),
      voterLoad: this.voterLoad(node.id) - (ownVoters.has(node.id) ? 1 : 0),
    }));
  }

  /** A new app's group starts with its placement as its membership (bootstrapped, not moved). */
  createApp(name: string, spec: PlacementSpec, placement: Placement): void {
    const membership: Membership = { voters: placement.voters, learners: placement.learners, leader: placement.voters[0] ?? '' };
    this.appsByName.set(name, { name, spec, target: placement, membership });
    this.countVoters(placement.voters, 1);
  }

  setTarget(app: string, target: Placement): void {
    this.app(app).target = target;
  }

  /** A node that went down: it may host nothing new, and every group it led elects a leader
   *  among its live voters, or has none when those are not a quorum. */
  failNode(node: NodeId): void {
    this.ineligible.add(node);
    for (const app of this.appsByName.values()) {
      const { voters, leader } = app.membership;
      if (!voters.includes(node)) continue;
      const live = voters.filter((voter) => this.isEligible(voter));
      const elected = live.length >= quorumOf(voters.length) ? (leader !== node && this.isEligible(leader) ? leader : live[0]!) : '';
      app.membership = { ...app.membership, leader: elected };
    }
  }

  /** A step once it committed in the app's group. */
  apply(app: string, step: MembershipStep): void {
    const state = this.app(app);
    const before = state.membership.voters;
    state.membership = membershipAfter(state.membership, step);
    this.countVoters(state.membership.voters.filter((voter) => !before.includes(voter)), 1);
    this.countVoters(before.filter((voter) => !state.membership.voters.includes(voter)), -1);
  }

  private app(name: string): SimApp {
    const app = this.appsByName.get(name);
    if (app === undefined) throw new Error(`no app ${name} in the simulated cluster`);
    return app;
  }

  private countVoters(voters: readonly NodeId[], delta: number): void {
    for (const voter of voters) this.voterLoads.set(voter, this.voterLoad(voter) + delta);
  }
}
