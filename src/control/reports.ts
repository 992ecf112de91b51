// What the control-plane leader has heard from nodes, in memory: the last heartbeat of each
// node and when it came. Not replicated: a new leader hears every live node again within one
// heartbeat period, and until then treats every node as just heard (a grace period, so a
// failover never marks the fleet suspect).
import type { GroupReport, HeartbeatRequest } from '../cluster/control-protocol.js';
import type { NodeId } from '../model/ids.js';

export interface HeardFrom {
  readonly request: HeartbeatRequest;
  readonly atMs: number;
}

/** What the fleet says of one app's group. */
export interface GroupView {
  /** The report of the node that leads the group at the highest term, if any. */
  readonly leader: { readonly node: NodeId; readonly report: GroupReport } | undefined;
  /** Every node that reports hosting the group. */
  readonly hosts: ReadonlyMap<NodeId, GroupReport>;
}

export type GroupLeader = NonNullable<GroupView['leader']>;

export class NodeReports {
  private readonly heard = new Map<NodeId, HeardFrom>();
  /** Per app, the node that reports leading it at the highest term: kept as reports arrive,
   *  since every heartbeat answer and every reconciler pass asks for it, for every app. */
  private readonly leaders = new Map<string, GroupLeader>();
  /** When this member started hearing (became leader): silence before it is not held against nodes. */
  private sinceMs = 0;

  reset(nowMs: number): void {
    this.heard.clear();
    this.leaders.clear();
    this.sinceMs = nowMs;
  }

  record(request: HeartbeatRequest, nowMs: number): void {
    const node = request.node.id;
    const previous = this.heard.get(node);
    this.heard.set(node, { request, atMs: nowMs });
    // This node stopped leading a group: the leader is whichever other report says so now.
    for (const report of previous?.request.groups ?? []) {
      if (!report.isLeader || this.leaders.get(report.app)?.node !== node) continue;
      if (request.groups.some((group) => group.app === report.app && group.isLeader)) continue;
      this.leaders.delete(report.app);
      const other = this.scanLeader(report.app);
      if (other !== undefined) this.leaders.set(report.app, other);
    }
    for (const report of request.groups) {
      if (!report.isLeader) continue;
      const current = this.leaders.get(report.app);
      if (current === undefined || current.node === node || report.term > current.report.term) this.leaders.set(report.app, { node, report });
    }
  }

  /** The report of the node leading `app`'s group at the highest term, if any. */
  leaderOf(app: string): GroupLeader | undefined {
    return this.leaders.get(app);
  }

  private scanLeader(app: string): GroupLeader | undefined {
    let leader: GroupLeader | undefined;
    for (const [node, { request }] of this.heard) {
      const report = request.groups.find((group) => group.app === app);
      if (report?.isLeader === true && (leader === undefined || report.term > leader.report.term)) leader = { node, report };
    }
    return leader;
  }

  /** When the node was last heard, or when this leader started listening. */
  lastHeardMs(node: NodeId): number {
    return this.heard.get(node)?.atMs ?? this.sinceMs;
  }

  /** The last report of `node`'s group of `app`, if the node reported one. */
  report(node: NodeId, app: string): GroupReport | undefined {
    return this.heard.get(node)?.request.groups.find((group) => group.app === app);
  }

  group(app: string): GroupView {
    const hosts = new Map<NodeId, GroupReport>();
    for (const [node, { request }] of this.heard) {
      const report = request.groups.find((group) => group.app === app);
      if (report !== undefined) hosts.set(node, report);
    }
    return { leader: this.leaders.get(app), hosts };
  }
}
