// The control-plane leader's reconciler: for every app it moves the app's group one safe
// membership change at a time from what the group's leader reports towards the target the
// control state holds, records each step (started, then done or failed) in the control log,
// keeps the group's leader in the region holding the most voters, and moves the app's rollout
// in progress one step (rollout.ts).
// Everything it decides follows from replicated state and fresh reports, so a new leader
// resumes where the old one stopped: a step the old leader started and the group applied is
// recorded done; one the group never applied is taken again.
import { promoteLagEntriesMax } from '../cluster/admin.js';
import { postJson } from '../cluster/post-json.js';
import type { LeaderDuty } from '../group/leader-duties.js';
import type { NodeId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import type { ControlPlane } from './control-plane.js';
import { membershipMatches, nextStep } from './placement.js';
import type { Membership, MembershipStep } from './placement-types.js';
import { RolloutDriver, type RolloutTiming } from './rollout.js';
import type { AppRecord } from './state.js';
import type { GroupReport } from '../cluster/control-protocol.js';
import { leaderWellPlaced } from './views.js';

/** How often the leader compares every app with its target. */
const passIntervalMs = 300;
/** A step the group has not applied by then is recorded failed (and taken again). */
const stepTimeoutMs = 15_000;
/** Calls to a node's admin API. */
const adminTimeoutMs = 10_000;

interface InFlight {
  readonly step: MembershipStep;
  readonly startedMs: number;
  /** Started by an earlier leader (found in the log when this one took over). */
  readonly inherited: boolean;
}

export function stepApplied(step: MembershipStep, actual: Membership): boolean {
  switch (step.kind) {
    case 'addLearner':
      return actual.learners.includes(step.node) || actual.voters.includes(step.node);
    case 'promote':
      return actual.voters.includes(step.node);
    case 'remove':
      return !actual.learners.includes(step.node) && !actual.voters.includes(step.node);
    case 'transferLeader':
      return actual.leader !== step.node;
  }
}

export function describeStep(step: MembershipStep): string {
  return step.kind === 'transferLeader' ? `transfer leadership from ${step.node} to ${step.to}` : `${step.kind} ${step.node}`;
}

export class Reconciler implements LeaderDuty {
  readonly name = 'reconciler';
  private timer: NodeJS.Timeout | undefined;
  private passing = false;
  /** soon() was called during a pass: run another right after it. */
  private passAgain = false;
  private readonly inFlight = new Map<string, InFlight>();
  /** leadersPerNode() of the pass under way. */
  private leadCounts: ReadonlyMap<NodeId, number> | undefined;
  private readonly rollouts: RolloutDriver;

  constructor(
    private readonly control: ControlPlane,
    rolloutTiming: RolloutTiming,
    private readonly logger: Logger,
  ) {
    this.rollouts = new RolloutDriver(control, rolloutTiming, logger);
  }

  start(): void {
    // Steps a previous leader started and did not see finish: check them like our own.
    this.inFlight.clear();
    for (const app of this.control.machine.state.apps.values()) {
      const last = app.steps[app.steps.length - 1];
      if (last?.outcome === 'started') this.inFlight.set(app.name, { step: last.step, startedMs: Date.now(), inherited: true });
    }
    this.timer ??= setInterval(() => void this.pass(), passIntervalMs);
  }

  /** Runs a pass now (or right after the one under way), on the leader only. */
  soon(): void {
    if (this.timer === undefined) return;
    if (this.passing) {
      this.passAgain = true;
      return;
    }
    void this.pass();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async pass(): Promise<void> {
    if (this.passing) return;
    this.passing = true;
    this.leadCounts = undefined;
    try {
      const { state } = this.control.machine;
      for (const name of [...state.apps.keys()].sort()) {
        const app = state.apps.get(name);
        if (app !== undefined) await this.reconcile(app);
      }
      await this.finishDrains();
    } catch (error) {
      this.logger.warn({ err: error }, 'reconciler pass failed');
    } finally {
      this.passing = false;
    }
    if (this.passAgain) {
      this.passAgain = false;
      void this.pass();
    }
  }

  private async reconcile(app: AppRecord): Promise<void> {
    const leader = this.control.reports.leaderOf(app.name);
    if (leader === undefined) return; // not elected yet, or nobody reported: wait
    if (!app.founded) {
      await this.control.propose({ op: 'app.founded', name: app.name }, 'control:reconciler');
      return;
    }
    const actual: Membership = { voters: leader.report.voters, learners: leader.report.learners, leader: leader.node };
    this.reconcileVersion(app, leader);
    const pending = this.inFlight.get(app.name);
    if (pending !== undefined) {
      if (stepApplied(pending.step, actual)) {
        this.inFlight.delete(app.name);
        await this.record(app.name, pending.step, 'done', `${describeStep(pending.step)}: applied by the group${pending.inherited ? ' (started by an earlier control-plane leader)' : ''}`);
      } else if (Date.now() - pending.startedMs > stepTimeoutMs) {
        this.inFlight.delete(app.name);
        await this.record(app.name, pending.step, 'failed', `${describeStep(pending.step)}: not applied within ${stepTimeoutMs} ms; it is taken again`);
      }
      return;
    }
    const { commit, match } = leader.report;
    const caughtUp = (node: NodeId): boolean => (match?.[node] ?? 0) >= commit - promoteLagEntriesMax;
    const step = nextStep(actual, app.target, caughtUp) ?? this.leaderPreference(app, actual, caughtUp);
    if (step === undefined) return;
    this.inFlight.set(app.name, { step, startedMs: Date.now(), inherited: false });
    await this.record(app.name, step, 'started', describeStep(step));
    try {
      await this.take(app.name, leader.node, step);
    } catch (error) {
      this.inFlight.delete(app.name);
      await this.record(app.name, step, 'failed', `${describeStep(step)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async record(name: string, step: MembershipStep, outcome: 'started' | 'done' | 'failed', detail: string): Promise<void> {
    this.logger.info({ app: name, step, outcome, detail }, 'membership step');
    await this.control.propose({ op: 'app.step', name, step, outcome, detail }, 'control:reconciler');
  }

  /** Asks the app's leader node to make the membership change. */
  private async take(app: string, leaderNode: NodeId, step: MembershipStep): Promise<void> {
    const { state } = this.control.machine;
    const url = state.nodes.get(leaderNode)?.httpUrl;
    if (url === undefined) throw new Error(`leader ${leaderNode} of ${app} is not a registered node`);
    const path = `/_admin/${encodeURIComponent(app)}`;
    switch (step.kind) {
      case 'addLearner': {
        const address = state.nodes.get(step.node)?.grpcAddress;
        if (address === undefined) throw new Error(`node ${step.node} is not registered`);
        return this.admin(url, `${path}/learners`, { id: step.node, address }, adminTimeoutMs);
      }
      case 'promote':
        return this.admin(url, `${path}/promote`, { id: step.node }, adminTimeoutMs);
      case 'remove':
        return this.admin(url, `${path}/remove`, { id: step.node }, adminTimeoutMs);
      case 'transferLeader':
        return this.admin(url, `${path}/transfer`, { to: step.to }, adminTimeoutMs);
    }
  }

  private async admin(baseUrl: string, path: string, body: unknown, timeoutMs: number): Promise<void> {
    await postJson(`${baseUrl}${path}`, body, timeoutMs, this.control.clusterAuthorization);
  }

  /** Makes the group run the desired version: the rollout in progress moves one step, or, with
   *  none in progress, a version already active in the group is recorded as active. */
  private reconcileVersion(app: AppRecord, leader: { readonly node: NodeId; readonly report: GroupReport }): void {
    if (app.rollout !== undefined) {
      this.rollouts.drive(app, leader);
      return;
    }
    const desired = app.versions.find((version) => version.version === app.desiredVersion);
    if (desired === undefined || leader.report.activeHash !== desired.hash || app.activeVersion === desired.version) return;
    void this.control.propose({ op: 'app.activated', name: app.name, version: desired.version, hash: desired.hash }, 'control:reconciler').catch(() => undefined);
  }

  /**
   * Once the membership matches the target: a leader outside the region that holds the most
   * voters makes every commit wait for a cross-region acknowledgement, so leadership moves to a
   * caught-up voter of that region (the one leading the fewest apps), like CockroachDB's lease
   * preferences. Ties between regions keep the leader where it is.
   */
  private leaderPreference(app: AppRecord, actual: Membership, caughtUp: (node: NodeId) => boolean): MembershipStep | undefined {
    if (!membershipMatches(actual, app.target)) return undefined;
    const { state } = this.control.machine;
    const regionOf = (node: NodeId): string | undefined => state.nodes.get(node)?.region;
    if (leaderWellPlaced(actual.voters, actual.leader, regionOf)) return undefined;
    const candidates = actual.voters.filter((voter) => voter !== actual.leader && leaderWellPlaced(actual.voters, voter, regionOf) && caughtUp(voter) && state.nodes.get(voter)?.liveness === 'up');
    const leads = this.leadersPerNode();
    candidates.sort((a, b) => (leads.get(a) ?? 0) - (leads.get(b) ?? 0) || (a < b ? -1 : 1));
    const to = candidates[0];
    return to === undefined ? undefined : { kind: 'transferLeader', node: actual.leader, to };
  }

  /** How many apps each node leads, as reported (counted once per pass, when first needed). */
  private leadersPerNode(): ReadonlyMap<NodeId, number> {
    if (this.leadCounts === undefined) {
      const counts = new Map<NodeId, number>();
      for (const name of this.control.machine.state.apps.keys()) {
        const leader = this.control.reports.leaderOf(name)?.node;
        if (leader !== undefined) counts.set(leader, (counts.get(leader) ?? 0) + 1);
      }
      this.leadCounts = counts;
    }
    return this.leadCounts;
  }

  /** A draining node that holds no replica any more is drained. */
  private async finishDrains(): Promise<void> {
    const { state } = this.control.machine;
    for (const node of state.nodes.values()) {
      if (node.drain !== 'draining') continue;
      let holds = false;
      for (const app of state.apps.values()) {
        const leader = this.control.reports.leaderOf(app.name);
        const members = leader === undefined ? [...app.target.voters, ...app.target.learners] : [...leader.report.voters, ...leader.report.learners];
        if (members.includes(node.id) || app.target.voters.includes(node.id) || app.target.learners.includes(node.id)) holds = true;
      }
      if (!holds) await this.control.propose({ op: 'node.drain', id: node.id, drain: 'drained' }, 'control:reconciler');
    }
  }
}
