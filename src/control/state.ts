// The control plane's replicated state and the one function that changes it: `apply(entry)`.
// Deterministic and in memory (the control machine persists what an apply changed; the scale
// simulation drives this same class with simulated nodes). Placement targets are computed
// here, at apply time, from the state every member holds, so every member computes the same
// target; the reconciler (on the leader) only moves each app's group towards its target.
import type { Bundle } from '../model/app-entries.js';
import type { AppVersion, LogIndex, NodeId } from '../model/ids.js';
import type { ControlCommand, ControlEntry, DrainState, NodeAddresses, NodeLiveness, ReplicaVerdict, StepOutcome } from './commands.js';
import { AuthState, type AuthChanges, type AuthContext } from './auth-state.js';
import { place, survivalOf } from './placement.js';
import type { CandidateNode, MembershipStep, Placement, PlacementResult, PlacementSpec, SurvivalReport } from './placement-types.js';

export interface NodeRecord extends NodeAddresses {
  readonly liveness: NodeLiveness;
  readonly drain: DrainState;
  readonly registeredAt: number;
  /** When the log last heard of the node (registration or a liveness change). */
  readonly seenAt: number;
}

export interface VersionRecord {
  readonly version: AppVersion;
  readonly hash: string;
  readonly stagedAt: number;
  readonly actor: string;
  readonly allowBreaking: boolean;
}

export interface StepRecord {
  readonly index: LogIndex;
  readonly at: number;
  readonly step: MembershipStep;
  readonly outcome: StepOutcome;
  readonly detail: string;
}

/** The switch of an app's fleet from one version to the next (stage, prepare everywhere,
 *  activate once every replica prepared; abort on a failure or the deadline). */
export interface RolloutRecord {
  readonly version: AppVersion;
  readonly hash: string;
  readonly actor: string;
  readonly startedAt: number;
  readonly startedIndex: LogIndex;
  /** The group's own number for the staged version, once staged. */
  readonly appVersion: AppVersion | undefined;
  readonly abortRequested: boolean;
  /** A rollback: the version whose code this rollout brings back. */
  readonly rollbackTo?: AppVersion;
  /** The version active when the rollout started (what a failed validation rolls back to). */
  readonly previousVersion?: AppVersion;
  /** Watch the error rate this long after activation (0 or absent: no validation). */
  readonly validateForMs?: number;
  readonly maxErrorRate?: number;
  /** When the version was activated, while its validation window runs. */
  readonly activatedAt?: number;
  /** When the control plane found every replica prepared, and the app log index of the
   *  Activate entry it then proposed (absent: not switched by this rollout's decision). */
  readonly preparedAt?: number;
  readonly switchIndex?: number;
  /** Set once it ended. */
  readonly outcome?: 'activated' | 'aborted' | 'rolledBack';
  readonly endedAt?: number;
  readonly reason?: string;
  /** Each replica's verdict when the outcome was decided. */
  readonly verdicts?: Readonly<Record<NodeId, ReplicaVerdict>>;
}

export interface AppRecord {
  readonly name: string;
  readonly spec: PlacementSpec;
  readonly versions: readonly VersionRecord[];
  /** The version the control plane wants active (the last one deployed). */
  readonly desiredVersion: AppVersion;
  /** The version the app's group last reported active (0: none yet). */
  readonly activeVersion: AppVersion;
  /** Set when the desired version was refused by the app's group. */
  readonly failure: { readonly version: AppVersion; readonly reason: string } | undefined;
  /** The voters a brand-new group bootstraps with; used only until `founded`. */
  readonly initialVoters: readonly NodeId[];
  readonly founded: boolean;
  /** Where the app's replicas should be. */
  readonly target: Placement;
  readonly survival: SurvivalReport;
  /** Why the target does not meet the spec any more (nodes lost), or undefined. */
  readonly shortfall: string | undefined;
  /** The most recent membership steps, oldest first (bounded). */
  readonly steps: readonly StepRecord[];
  /** The rollout in progress, if any. */
  readonly rollout: RolloutRecord | undefined;
  /** Ended rollouts, oldest first (bounded). */
  readonly history: readonly RolloutRecord[];
  readonly createdAt: number;
  readonly updatedIndex: LogIndex;
}

export type ApplyResult =
  | { readonly ok: true; readonly detail?: string; readonly version?: AppVersion; readonly revision: number }
  | { readonly ok: false; readonly reason: string; readonly revision: number; /** Refused because the caller may not do this. */ readonly denied?: true };

/** What an apply changed, for the store to persist. */
export interface Changes extends AuthChanges {
  readonly nodes: Set<NodeId>;
  readonly apps: Set<string>;
  readonly bundles: Set<string>;
  readonly members: Set<NodeId>;
  revision: boolean;
}

/** Membership steps kept per app. */
export const stepsKeptMax = 50;
/** The server-error rate above which a validated version is rolled back, unless the deploy says. */
export const defaultMaxErrorRate = 0.01;
/** Ended rollouts kept per app. */
export const historyKeptMax = 50;
/** Versions (and their bundles) kept per app. */
export const versionsKeptMax = 10;
export const appNamePattern = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
/** App names a deploy may not take: they would read as the cluster's own (Harper's system
 *  database, the control plane, the dashboard). */
export const reservedAppNames: ReadonlySet<string> = new Set(['system', 'control', 'lockstep', 'ui', 'v1', 'metrics']);

function sorted(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort();
}

export class ControlState {
  readonly nodes = new Map<NodeId, NodeRecord>();
  readonly apps = new Map<string, AppRecord>();
  readonly bundles = new Map<string, Bundle>();
  /** Control-plane members' HTTP URLs. */
  readonly members = new Map<NodeId, string>();
  /** Control-plane members' audit signing keys (SPKI DER, base64). */
  readonly memberKeys = new Map<NodeId, string>();
  /** Identities, tokens, grants and roles. */
  readonly auth = new AuthState();
  /** Changes whenever placement inputs or outputs change: a plan made at revision r is still
   *  valid while the revision is r. */
  revision = 0;

  private readonly authContext: AuthContext = {
    appRegions: (app) => this.apps.get(app)?.spec.regions,
    nodeRegion: (node) => this.nodes.get(node)?.region,
  };

  /** Applies one committed entry at `index`. Refused entries change nothing. */
  apply(index: LogIndex, entry: ControlEntry, changes: Changes): ApplyResult {
    const refuse = (reason: string): ApplyResult => ({ ok: false, reason, revision: this.revision });
    const command = entry.command;
    const denied = this.auth.entryRefusal(entry.actor, entry.token, entry.caveats ?? [], entry.at, command, this.authContext);
    if (denied !== undefined) return { ok: false, reason: denied, revision: this.revision, denied: true };
    switch (command.op) {
      case 'auth.bootstrap':
      case 'identity.create':
      case 'identity.update':
      case 'grant.add':
      case 'grant.remove':
      case 'role.define':
      case 'role.remove':
      case 'token.issue':
      case 'token.revoke': {
        const outcome = this.auth.apply(entry, command, changes);
        return outcome.ok ? { ok: true, revision: this.revision, ...(outcome.detail === undefined ? {} : { detail: outcome.detail }) } : refuse(outcome.reason);
      }
      case 'audit.denied':
        // Nothing in the control state changes: each attempt is a record of the audit trail.
        return this.ok();
      case 'member.announce':
        this.members.set(command.id, command.httpUrl);
        if (command.auditKey !== undefined) this.memberKeys.set(command.id, command.auditKey);
        changes.members.add(command.id);
        return this.ok();
      case 'node.register':
        return this.register(index, entry.at, command.node, changes) ?? this.ok();
      case 'node.liveness': {
        const node = this.nodes.get(command.id);
        if (node === undefined) return refuse(`no node ${command.id}`);
        if (node.liveness === command.liveness) return this.ok();
        this.nodes.set(node.id, { ...node, liveness: command.liveness, seenAt: entry.at });
        changes.nodes.add(node.id);
        this.replaceAround(index, node.region, changes);
        return this.ok();
      }
      case 'node.drain': {
        const node = this.nodes.get(command.id);
        if (node === undefined) return refuse(`no node ${command.id}`);
        if (command.drain === 'drained' && node.drain !== 'draining') return refuse(`${command.id} is not draining`);
        if (node.drain === command.drain) return this.ok();
        this.nodes.set(node.id, { ...node, drain: command.drain });
        changes.nodes.add(node.id);
        this.replaceAround(index, node.region, changes);
        return this.ok();
      }
      case 'app.deploy':
        return this.deploy(index, entry, command, changes);
      case 'app.founded':
        return this.updateApp(index, command.name, changes, (app) => (app.founded ? undefined : { ...app, founded: true }));
      case 'app.activated':
        return this.updateApp(index, command.name, changes, (app) => {
          if (app.activeVersion === command.version && app.rollout?.version !== command.version) return undefined;
          const active = { ...app, activeVersion: command.version, failure: app.failure !== undefined && app.failure.version > command.version ? app.failure : undefined };
          const switched = { ...(command.preparedAt === undefined ? {} : { preparedAt: command.preparedAt }), ...(command.switchIndex === undefined ? {} : { switchIndex: command.switchIndex }) };
          const rollout = app.rollout === undefined || app.rollout.version !== command.version ? app.rollout : { ...app.rollout, ...switched };
          if (rollout !== undefined && rollout.version === command.version && (rollout.validateForMs ?? 0) > 0) {
            // Active everywhere now; the rollout ends when its validation window does.
            if (rollout.activatedAt !== undefined) return undefined;
            return { ...active, rollout: { ...rollout, activatedAt: entry.at, ...(command.verdicts === undefined ? {} : { verdicts: command.verdicts }) } };
          }
          return endRollout({ ...active, rollout }, command.version, 'activated', undefined, entry.at, command.verdicts);
        });
      case 'app.validated':
        return this.updateApp(index, command.name, changes, (app) =>
          app.rollout?.version !== command.version || app.rollout.activatedAt === undefined ? undefined : endRollout(app, command.version, 'activated', command.detail, entry.at, app.rollout.verdicts),
        );
      case 'app.validationFailed':
        return this.validationFailed(index, entry, command.name, command.version, command.reason, changes);
      case 'app.deployFailed':
        return this.updateApp(index, command.name, changes, (app) => endRollout({ ...app, failure: { version: command.version, reason: command.reason } }, command.version, 'aborted', command.reason, entry.at, command.verdicts));
      case 'app.rolloutStaged':
        return this.updateApp(index, command.name, changes, (app) =>
          app.rollout === undefined || app.rollout.version !== command.version ? undefined : { ...app, rollout: { ...app.rollout, appVersion: command.appVersion } },
        );
      case 'app.rollback':
        return this.rollback(index, entry, command.name, command.to, changes);
      case 'app.abortRollout': {
        const app = this.apps.get(command.name);
        if (app === undefined) return refuse(`no app ${command.name}`);
        if (app.rollout === undefined) return refuse(`no rollout of ${command.name} is in progress`);
        return this.updateApp(index, command.name, changes, (current) => (current.rollout === undefined ? undefined : { ...current, rollout: { ...current.rollout, abortRequested: true } }));
      }
      case 'audit.seal':
        // Nothing in the control state changes: the seal lives in the audit trail.
        return this.ok();
      case 'app.step':
        return this.updateApp(index, command.name, changes, (app) => ({
          ...app,
          steps: [...app.steps, { index, at: entry.at, step: command.step, outcome: command.outcome, detail: command.detail }].slice(-stepsKeptMax),
        }));
    }
  }

  /** The nodes as the solver sees them for `app` (its current replicas may stay while suspect). */
  candidates(appName: string | undefined): CandidateNode[] {
    return this.candidatesWith(appName, this.voterLoads());
  }

  /** Voters each node holds over every app's target. */
  private voterLoads(): Map<NodeId, number> {
    const load = new Map<NodeId, number>();
    for (const app of this.apps.values()) for (const voter of app.target.voters) load.set(voter, (load.get(voter) ?? 0) + 1);
    return load;
  }

  /** candidates() given the load over all apps (`voterLoads()`), so that re-placing every app of
   *  a region counts the load once rather than once per app: the app's own voters are taken off. */
  private candidatesWith(appName: string | undefined, load: ReadonlyMap<NodeId, number>): CandidateNode[] {
    const app = appName === undefined ? undefined : this.apps.get(appName);
    const ownVoters = new Set<NodeId>(app?.target.voters ?? []);
    const holds = new Set<NodeId>(app === undefined ? [] : [...app.target.voters, ...app.target.learners]);
    return sorted(this.nodes.keys()).map((id) => {
      const node = this.nodes.get(id) as NodeRecord;
      const live = node.liveness === 'up' || (node.liveness === 'suspect' && holds.has(id));
      const voterLoad = (load.get(id) ?? 0) - (ownVoters.has(id) ? 1 : 0);
      return { id, region: node.region, zone: node.zone ?? `node:${id}`, eligible: live && node.drain === 'none', voterLoad };
    });
  }

  survivalOf(app: AppRecord): SurvivalReport {
    return survivalOf(app.target, this.candidates(app.name));
  }

  private ok(): ApplyResult {
    return { ok: true, revision: this.revision };
  }

  private register(index: LogIndex, at: number, node: NodeAddresses, changes: Changes): ApplyResult | undefined {
    const existing = this.nodes.get(node.id);
    if (existing !== undefined && existing.region !== node.region) {
      return { ok: false, reason: `node ${node.id} is registered in region ${existing.region}; a node cannot change region (start it with a new id)`, revision: this.revision };
    }
    const zone = node.zone ?? undefined;
    if (existing !== undefined && existing.httpUrl === node.httpUrl && existing.grpcAddress === node.grpcAddress && existing.zone === zone) return undefined;
    this.nodes.set(node.id, {
      id: node.id,
      region: node.region,
      zone,
      httpUrl: node.httpUrl,
      grpcAddress: node.grpcAddress,
      liveness: existing?.liveness ?? 'up',
      drain: existing?.drain ?? 'none',
      registeredAt: existing?.registeredAt ?? at,
      seenAt: at,
    });
    changes.nodes.add(node.id);
    if (existing === undefined || existing.zone !== zone) this.replaceAround(index, node.region, changes);
    return undefined;
  }

  private deploy(index: LogIndex, entry: ControlEntry, command: Extract<ControlCommand, { op: 'app.deploy' }>, changes: Changes): ApplyResult {
    const refuse = (reason: string): ApplyResult => ({ ok: false, reason, revision: this.revision });
    if (!appNamePattern.test(command.name)) return refuse(`app name '${command.name}' must start with a letter and hold only letters, digits, '-' and '_' (at most 63)`);
    if (reservedAppNames.has(command.name.toLowerCase())) return refuse(`app name '${command.name}' is reserved for the cluster's own use`);
    if (command.expectRevision !== undefined && command.expectRevision !== this.revision) {
      return refuse(`the plan was made at revision ${command.expectRevision}; the placement state is at revision ${this.revision} now: plan again`);
    }
    const existing = this.apps.get(command.name);
    const inProgress = existing?.rollout;
    if (inProgress !== undefined && inProgress.hash !== command.bundle.hash) {
      return refuse(`version ${inProgress.version} of ${command.name} (deployed by ${inProgress.actor} at ${new Date(inProgress.startedAt).toISOString()}) is being rolled out; wait for it to finish, or clusterctl abort ${command.name}`);
    }
    const result = place(command.spec, this.candidates(command.name), existing?.target);
    if (!result.ok) return refuse(result.reason);
    const versions = existing?.versions ?? [];
    const latest = versions[versions.length - 1];
    let desiredVersion = existing?.desiredVersion ?? 0;
    let newVersions = versions;
    if (latest === undefined || latest.hash !== command.bundle.hash) {
      desiredVersion = (latest?.version ?? 0) + 1;
      newVersions = [...versions, { version: desiredVersion, hash: command.bundle.hash, stagedAt: entry.at, actor: entry.actor, allowBreaking: command.allowBreaking }].slice(-versionsKeptMax);
      this.bundles.set(command.bundle.hash, command.bundle);
      changes.bundles.add(command.bundle.hash);
      for (const dropped of versions.slice(0, versions.length + 1 - versionsKeptMax)) {
        if (!newVersions.some((kept) => kept.hash === dropped.hash) && !this.bundleUsedElsewhere(dropped.hash, command.name)) {
          this.bundles.delete(dropped.hash);
          changes.bundles.add(dropped.hash);
        }
      }
    }
    const app: AppRecord = {
      name: command.name,
      spec: command.spec,
      versions: newVersions,
      desiredVersion,
      activeVersion: existing?.activeVersion ?? 0,
      failure: existing?.failure?.version === desiredVersion ? existing.failure : undefined,
      initialVoters: existing?.initialVoters ?? result.placement.voters,
      founded: existing?.founded ?? false,
      target: result.placement,
      survival: result.survival,
      shortfall: undefined,
      steps: existing?.steps ?? [],
      rollout:
        desiredVersion !== (existing?.desiredVersion ?? 0)
          ? {
              version: desiredVersion,
              hash: command.bundle.hash,
              actor: entry.actor,
              startedAt: entry.at,
              startedIndex: index,
              appVersion: undefined,
              abortRequested: false,
              previousVersion: existing?.activeVersion ?? 0,
              ...(command.validateForMs !== undefined && command.validateForMs > 0 ? { validateForMs: command.validateForMs, maxErrorRate: command.maxErrorRate ?? defaultMaxErrorRate } : {}),
            }
          : existing?.rollout,
      history: existing?.history ?? [],
      createdAt: existing?.createdAt ?? entry.at,
      updatedIndex: index,
    };
    this.apps.set(app.name, app);
    changes.apps.add(app.name);
    this.bumpRevision(changes);
    return { ok: true, version: desiredVersion, revision: this.revision };
  }

  /** The version failed its validation: its rollout ends rolled back, and a rollback to the
   *  version active before it starts at once. */
  private validationFailed(index: LogIndex, entry: ControlEntry, name: string, version: AppVersion, reason: string, changes: Changes): ApplyResult {
    const app = this.apps.get(name);
    const rollout = app?.rollout;
    if (app === undefined || rollout === undefined || rollout.version !== version || rollout.activatedAt === undefined) return { ok: false, reason: `version ${version} of ${name} is not being validated`, revision: this.revision };
    const ended = endRollout({ ...app, failure: { version, reason } }, version, 'rolledBack', reason, entry.at, rollout.verdicts);
    this.apps.set(name, { ...ended, updatedIndex: index });
    changes.apps.add(name);
    const previous = rollout.previousVersion ?? 0;
    if (previous === 0) return { ok: true, detail: 'no earlier version to roll back to', revision: this.revision };
    const started = this.rollback(index, entry, name, previous, changes);
    const failed = this.apps.get(name);
    if (failed !== undefined) this.apps.set(name, { ...failed, failure: { version, reason } });
    return started;
  }

  private rollback(index: LogIndex, entry: ControlEntry, name: string, to: AppVersion, changes: Changes): ApplyResult {
    const refuse = (reason: string): ApplyResult => ({ ok: false, reason, revision: this.revision });
    const app = this.apps.get(name);
    if (app === undefined) return refuse(`no app ${name}`);
    if (app.rollout !== undefined) return refuse(`version ${app.rollout.version} of ${name} (deployed by ${app.rollout.actor}) is being rolled out; wait for it to finish, or clusterctl abort ${name}`);
    const target = app.versions.find((version) => version.version === to);
    if (target === undefined) return refuse(`${name} has no version ${to} to roll back to (kept: ${app.versions.map((version) => version.version).join(', ')})`);
    if (to === app.activeVersion) return refuse(`version ${to} of ${name} is the active one`);
    if (!this.bundles.has(target.hash)) return refuse(`the code of version ${to} of ${name} is no longer kept`);
    const version = (app.versions[app.versions.length - 1]?.version ?? 0) + 1;
    // Going back may undo schema changes (attributes or tables added since): the version ran
    // on this data before, so the change is accepted rather than refused as breaking.
    const versions = [...app.versions, { version, hash: target.hash, stagedAt: entry.at, actor: entry.actor, allowBreaking: true }].slice(-versionsKeptMax);
    this.apps.set(name, {
      ...app,
      versions,
      desiredVersion: version,
      failure: undefined,
      rollout: { version, hash: target.hash, actor: entry.actor, startedAt: entry.at, startedIndex: index, appVersion: undefined, abortRequested: false, rollbackTo: to, previousVersion: app.activeVersion },
      updatedIndex: index,
    });
    changes.apps.add(name);
    return { ok: true, version, revision: this.revision };
  }

  private bundleUsedElsewhere(hash: string, except: string): boolean {
    for (const app of this.apps.values()) if (app.name !== except && app.versions.some((v) => v.hash === hash)) return true;
    return false;
  }

  private updateApp(index: LogIndex, name: string, changes: Changes, update: (app: AppRecord) => AppRecord | undefined): ApplyResult {
    const app = this.apps.get(name);
    if (app === undefined) return { ok: false, reason: `no app ${name}`, revision: this.revision };
    const next = update(app);
    if (next !== undefined) {
      this.apps.set(name, { ...next, updatedIndex: index });
      changes.apps.add(name);
    }
    return this.ok();
  }

  /** A node of `region` changed (joined, died, came back, drains): every app placed on that
   *  region gets its target recomputed from its spec, keeping what it can. */
  private replaceAround(index: LogIndex, region: string, changes: Changes): void {
    this.bumpRevision(changes);
    // Each app is placed seeing the others' targets as they stand, re-placed ones included:
    // the load is counted once here and kept up to date as targets change.
    const load = this.voterLoads();
    for (const name of [...this.apps.keys()].sort()) {
      const app = this.apps.get(name) as AppRecord;
      if (!app.spec.regions.includes(region)) continue;
      const nodes = this.candidatesWith(name, load);
      const result = place(app.spec, nodes, app.target);
      let next: AppRecord;
      if (result.ok) {
        next = { ...app, target: result.placement, survival: result.survival, shortfall: undefined };
      } else {
        const degraded = degradedPlacement(app.spec, nodes, app.target);
        next = degraded === undefined ? { ...app, shortfall: result.reason } : { ...app, target: degraded.placement, survival: degraded.survival, shortfall: result.reason };
      }
      if (samePlacement(next.target, app.target) && next.shortfall === app.shortfall && next.survival.survives === app.survival.survives && next.survival.reason === app.survival.reason) continue;
      for (const voter of app.target.voters) load.set(voter, (load.get(voter) ?? 0) - 1);
      for (const voter of next.target.voters) load.set(voter, (load.get(voter) ?? 0) + 1);
      this.apps.set(name, { ...next, updatedIndex: index });
      changes.apps.add(name);
    }
  }

  private bumpRevision(changes: Changes): void {
    this.revision += 1;
    changes.revision = true;
  }
}

/** The app with its rollout of `version` ended (moved to the history); unchanged otherwise. */
function endRollout(app: AppRecord, version: AppVersion, outcome: 'activated' | 'aborted' | 'rolledBack', reason: string | undefined, at: number, verdicts: Readonly<Record<NodeId, ReplicaVerdict>> | undefined): AppRecord {
  const rollout = app.rollout;
  if (rollout === undefined || rollout.version !== version) return app;
  const ended: RolloutRecord = { ...rollout, outcome, endedAt: at, ...(reason === undefined ? {} : { reason }), ...(verdicts === undefined ? {} : { verdicts }) };
  return { ...app, rollout: undefined, history: [...app.history, ended].slice(-historyKeptMax) };
}

/**
 * The best a spec that cannot be met any more still allows, from live nodes only: first the full
 * voter count without the survival requirement, else as many voters as the regions have
 * eligible nodes. Never a target that names a node which is down: the group could not reach it,
 * and would wait for it for ever. Undefined when no node of the regions is eligible (the target
 * stays as it was).
 */
export function degradedPlacement(spec: PlacementSpec, nodes: readonly CandidateNode[], current: Placement): Extract<PlacementResult, { ok: true }> | undefined {
  const relaxed = place({ ...spec, survive: undefined }, nodes, current);
  if (relaxed.ok) return relaxed;
  const eligible = nodes.filter((node) => node.eligible && spec.regions.includes(node.region)).length;
  if (eligible === 0) return undefined;
  const fewer = place({ ...spec, survive: undefined, replicas: Math.min(spec.replicas, eligible) }, nodes, current);
  return fewer.ok ? fewer : undefined;
}

export function samePlacement(a: Placement, b: Placement): boolean {
  return a.voters.join(',') === b.voters.join(',') && a.learners.join(',') === b.learners.join(',');
}

export function emptyChanges(): Changes {
  return { nodes: new Set(), apps: new Set(), bundles: new Set(), members: new Set(), revision: false, identities: new Set(), tokens: new Set(), grants: new Set(), roles: new Set(), auth: false };
}
