// What a node should host, from the control state and what the fleet reports: every app whose
// target or whose actual membership names the node. A brand-new group's founding voters
// bootstrap it; every later member joins empty. A node is told to release a group only once
// the group's leader reports a membership without it.
import type { Assignment, Directory, HeartbeatResponse } from '../cluster/control-protocol.js';
import type { NodeId } from '../model/ids.js';
import type { NodeReports } from './reports.js';
import type { ControlState } from './state.js';
import { nodeState } from './views.js';

/** Nodes, their URLs and states, and where each app's replicas are (as its leader reports them,
 *  or its target before the group has a leader). */
export function directoryOf(state: ControlState, reports: NodeReports): Directory {
  return {
    nodes: [...state.nodes.values()].map((node) => ({ id: node.id, region: node.region, zone: node.zone ?? null, url: node.httpUrl, state: nodeState(node) })),
    apps: [...state.apps.values()].map((app) => {
      const leader = reports.leaderOf(app.name);
      return {
        name: app.name,
        regions: app.spec.regions,
        voters: leader?.report.voters ?? app.target.voters,
        learners: leader?.report.learners ?? app.target.learners,
        leader: leader?.node ?? null,
      };
    }),
  };
}

export function assignmentsFor(node: NodeId, state: ControlState, reports: NodeReports, intervalMs: number): HeartbeatResponse {
  const assignments: Assignment[] = [];
  const release: string[] = [];
  const validating: { app: string; hash: string }[] = [];
  const involved = new Set<NodeId>();
  for (const app of state.apps.values()) {
    const leader = reports.leaderOf(app.name);
    const actual = leader === undefined ? [] : [...leader.report.voters, ...leader.report.learners];
    const target = [...app.target.voters, ...app.target.learners];
    if (target.includes(node) || actual.includes(node)) {
      assignments.push({ app: app.name, bootstrapVoters: !app.founded && app.initialVoters.includes(node) ? app.initialVoters : [] });
      for (const member of [...target, ...actual, ...app.initialVoters]) involved.add(member);
      // In its validation window the active version's checks run again on every replica.
      if (app.rollout?.activatedAt !== undefined) validating.push({ app: app.name, hash: app.rollout.hash });
    } else if (leader !== undefined && app.founded && reports.report(node, app.name) !== undefined) {
      release.push(app.name);
    }
  }
  const peers: Record<NodeId, string> = {};
  for (const id of [...involved].sort()) {
    const address = state.nodes.get(id)?.grpcAddress;
    if (address !== undefined && id !== node) peers[id] = address;
  }
  return { assignments, release, peers, directory: directoryOf(state, reports), intervalMs, validating };
}
