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

export class NodeReports {
  private readonly heard = new Map<NodeId, HeardFrom>();
  /** When this member started hearing (became leader): silence before it is not held against nodes. */
  private sinceMs = 0;

  reset(nowMs: number): void {
    this.heard.clear();
    this.sinceMs = nowMs;
  }

  record(request: HeartbeatRequest, nowMs: number): void {
    this.heard.set(request.node.id, { request, atMs: nowMs });
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
    let leader: GroupView['leader'];
    for (const [node, { request }] of this.heard) {
      const report = request.groups.find((group) => group.app === app);
      if (report === undefined) continue;
      hosts.set(node, report);
      if (report.isLeader && (leader === undefined || report.term > leader.report.term)) leader = { node, report };
    }
    return { leader, hosts };
  }
}
