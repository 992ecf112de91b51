// The JSON the control plane answers with (and clusterctl prints): nodes, apps, one app's
// status, a deploy plan's changes. Stable shapes, documented in the README.
import type { NodeId } from '../model/ids.js';
import type { Placement } from './placement-types.js';
import type { NodeReports } from './reports.js';
import { verdictsOf } from './rollout.js';
import type { AppRecord, ControlState, NodeRecord, RolloutRecord } from './state.js';

export type NodeState = 'up' | 'suspect' | 'down' | 'draining' | 'drained';
export type ReplicaRole = 'voter' | 'learner' | 'none';

export function nodeState(node: NodeRecord): NodeState {
  if (node.drain !== 'none') return node.drain;
  return node.liveness;
}

export function nodeSummary(node: NodeRecord, apps: readonly AppRecord[], reports: NodeReports) {
  const voterOf = apps.filter((app) => app.target.voters.includes(node.id)).map((app) => app.name);
  const learnerOf = apps.filter((app) => app.target.learners.includes(node.id)).map((app) => app.name);
  return {
    id: node.id,
    region: node.region,
    zone: node.zone ?? null,
    state: nodeState(node),
    httpUrl: node.httpUrl,
    grpcAddress: node.grpcAddress,
    registeredAt: new Date(node.registeredAt).toISOString(),
    lastHeartbeatAgoMs: Math.max(0, Date.now() - reports.lastHeardMs(node.id)),
    voterOf,
    learnerOf,
  };
}

export function appSummary(app: AppRecord) {
  return {
    name: app.name,
    regions: app.spec.regions,
    replicas: app.spec.replicas,
    survive: app.spec.survive ?? null,
    desiredVersion: app.desiredVersion,
    activeVersion: app.activeVersion,
    voters: app.target.voters,
    learners: app.target.learners,
    survives: app.survival.survives,
    shortfall: app.shortfall ?? null,
  };
}

/** Whether the leader is in a region holding the most voters (where the reconciler keeps it). */
export function leaderWellPlaced(voters: readonly NodeId[], leader: NodeId, regionOf: (node: NodeId) => string | undefined): boolean {
  const counts = new Map<string, number>();
  for (const voter of voters) {
    const region = regionOf(voter);
    if (region !== undefined) counts.set(region, (counts.get(region) ?? 0) + 1);
  }
  const region = regionOf(leader);
  return region !== undefined && (counts.get(region) ?? 0) === Math.max(0, ...counts.values());
}

export function appStatus(app: AppRecord, reports: NodeReports, nodeOf: (node: NodeId) => NodeRecord | undefined) {
  const group = reports.group(app.name);
  const leader = group.leader;
  const regionOf = (node: NodeId): string | undefined => nodeOf(node)?.region;
  const activeHash = app.versions.find((version) => version.version === app.activeVersion)?.hash;
  // Every member that is up serves the active version (one that is down or suspect cannot say).
  const servedEverywhere =
    leader !== undefined &&
    [...leader.report.voters, ...leader.report.learners].every((node) => nodeOf(node)?.liveness !== 'up' || group.hosts.get(node)?.activeHash === activeHash);
  const members = [...group.hosts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, report]) => ({
    node,
    role: report.voters.includes(node) ? 'voter' : report.learners.includes(node) ? 'learner' : 'joining',
    leader: report.isLeader,
    applied: report.applied,
    activeVersionHash: report.activeHash ?? null,
    /** The version this replica serves (null: none yet, or code the control plane did not deploy). */
    servingVersion: report.activeHash === undefined ? null : ([...app.versions].reverse().find((version) => version.hash === report.activeHash)?.version ?? null),
    /** Requests the replica's active version answered, and server errors among them (5xx but 503). */
    served: report.served ?? null,
    /** This replica's verdict on the version being rolled out (null: no rollout, or no report yet). */
    rollout: app.rollout === undefined ? null : (app.rollout.verdicts?.[node] ?? verdictsOf(app.rollout, [node], () => report).get(node) ?? null),
  }));
  const converged =
    leader !== undefined &&
    leader.report.voters.join(',') === app.target.voters.join(',') &&
    leader.report.learners.join(',') === app.target.learners.join(',') &&
    app.activeVersion === app.desiredVersion &&
    app.steps[app.steps.length - 1]?.outcome !== 'started' &&
    app.rollout === undefined &&
    servedEverywhere &&
    leaderWellPlaced(leader.report.voters, leader.node, regionOf);
  return {
    ...appSummary(app),
    versions: app.versions.map((version) => ({ version: version.version, hash: version.hash, stagedAt: new Date(version.stagedAt).toISOString(), by: version.actor })),
    failure: app.failure ?? null,
    /** Staged and not yet active everywhere (null: no rollout before its activation). */
    stagedVersion: app.rollout !== undefined && app.rollout.activatedAt === undefined ? app.rollout.version : null,
    /** The version active before the active one (the target of a plain rollback). */
    previousVersion: [...app.history].reverse().find((rollout) => rollout.outcome === 'activated' && rollout.version === app.activeVersion)?.previousVersion ?? app.rollout?.previousVersion ?? null,
    survival: app.survival,
    target: app.target,
    group: leader === undefined ? null : { leader: leader.node, term: leader.report.term, commit: leader.report.commit, voters: leader.report.voters, learners: leader.report.learners },
    /** Every node that reports hosting the app's group, as it reports it. */
    members,
    /** Membership, version and leader placement match the target, every member that is up
     *  serves the active version, no step is in flight and no rollout is in progress
     *  (validation included). */
    converged,
    rollout: app.rollout === undefined ? null : rolloutJson(app.rollout),
    history: app.history.slice(-20).map(rolloutJson),
    steps: app.steps.slice(-20).map((step) => ({ index: step.index, at: new Date(step.at).toISOString(), ...step.step, outcome: step.outcome, detail: step.detail })),
  };
}

function rolloutJson(rollout: RolloutRecord) {
  return {
    version: rollout.version,
    hash: rollout.hash,
    by: rollout.actor,
    startedAt: new Date(rollout.startedAt).toISOString(),
    stagedAs: rollout.appVersion ?? null,
    abortRequested: rollout.abortRequested,
    /** A rollback: the version whose code it brings back (null: a deploy). */
    rollbackTo: rollout.rollbackTo ?? null,
    validateForMs: rollout.validateForMs ?? null,
    /** While its validation window runs: when the version was activated. */
    activatedAt: rollout.activatedAt === undefined ? null : new Date(rollout.activatedAt).toISOString(),
    outcome: rollout.outcome ?? null,
    endedAt: rollout.endedAt === undefined ? null : new Date(rollout.endedAt).toISOString(),
    reason: rollout.reason ?? null,
    /** When every replica had reported prepared, and the app log index every replica switched at. */
    preparedAt: rollout.preparedAt === undefined ? null : new Date(rollout.preparedAt).toISOString(),
    switchIndex: rollout.switchIndex ?? null,
    /** Each replica's verdict when the outcome was decided (null while in progress). */
    verdicts: rollout.verdicts ?? null,
  };
}

function roleIn(placement: Placement | undefined, node: NodeId): ReplicaRole {
  if (placement === undefined) return 'none';
  if (placement.voters.includes(node)) return 'voter';
  if (placement.learners.includes(node)) return 'learner';
  return 'none';
}

/** Per node, what a new target changes: from and to role. Unchanged nodes are left out. */
export function planChanges(current: Placement | undefined, next: Placement, state: ControlState) {
  const nodes = new Set<NodeId>([...(current?.voters ?? []), ...(current?.learners ?? []), ...next.voters, ...next.learners]);
  return [...nodes]
    .sort()
    .map((node) => ({ node, region: state.nodes.get(node)?.region ?? null, zone: state.nodes.get(node)?.zone ?? null, from: roleIn(current, node), to: roleIn(next, node) }))
    .filter((change) => change.from !== change.to);
}
