// The two-phase switch of an app's fleet from one version to the next, driven by the
// control-plane leader from replicated state and fresh reports:
//   1. stage: the app group's leader proposes Stage{bundle} into the app's log;
//   2. prepare: every replica (voters and learners) compiles and loads the version when it
//      applies the Stage entry, checks its schema change, and reports its verdict;
//   3. activate: once every member of the group reports `prepared`, Activate{version, epoch}
//      goes into the app's log (compare-and-set on the epoch) and every replica switches at
//      that index; on any `failed`, an operator's abort, or the prepare deadline, Abort{version}
//      goes in instead and nothing changes anywhere.
// Each decision is recorded in the control log (app.rolloutStaged, app.activated,
// app.deployFailed), so a new control-plane leader resumes the rollout where it stood.
import { postJson } from '../cluster/post-json.js';
import type { GroupReport, StagedVerdict } from '../cluster/control-protocol.js';
import type { NodeId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import type { ControlPlane } from './control-plane.js';
import type { ReplicaVerdict } from './commands.js';
import type { AppRecord, RolloutRecord } from './state.js';

function recorded(verdicts: ReadonlyMap<NodeId, StagedVerdict | undefined>): Record<NodeId, ReplicaVerdict> {
  const out: Record<NodeId, ReplicaVerdict> = {};
  for (const [node, verdict] of verdicts) out[node] = verdict === undefined ? { phase: 'no report' } : { phase: verdict.phase, ...(verdict.step === undefined ? {} : { step: verdict.step }), ...(verdict.reason === undefined ? {} : { reason: verdict.reason }), ...(verdict.checks === undefined ? {} : { checks: verdict.checks }) };
  return out;
}

/** Staging proposes one entry on the app leader; preparing compiles code on every replica. */
const stageTimeoutMs = 30_000;
const decideTimeoutMs = 30_000;

export interface RolloutTiming {
  /** A rollout whose replicas have not all prepared by then is aborted. */
  readonly prepareTimeoutMs: number;
}

export const defaultRolloutTiming: RolloutTiming = { prepareTimeoutMs: 60_000 };

/** What the members of a group say of one staged version. */
export function verdictsOf(rollout: RolloutRecord, members: readonly NodeId[], reportOf: (node: NodeId) => GroupReport | undefined): Map<NodeId, StagedVerdict | undefined> {
  const verdicts = new Map<NodeId, StagedVerdict | undefined>();
  for (const member of members) {
    const report = reportOf(member);
    verdicts.set(
      member,
      report?.staged.find((verdict) => verdict.version === rollout.appVersion && verdict.hash === rollout.hash) ??
        (report?.activeHash === rollout.hash ? { version: rollout.appVersion ?? 0, hash: rollout.hash, phase: 'prepared' } : undefined),
    );
  }
  return verdicts;
}

/** "eu1, us2 could not prepare it: <reason>", one clause per distinct reason. */
function failureReason(failed: readonly (readonly [NodeId, StagedVerdict | undefined])[]): string {
  const byReason = new Map<string, NodeId[]>();
  for (const [node, verdict] of failed) {
    const reason = verdict?.reason ?? 'failed';
    byReason.set(reason, [...(byReason.get(reason) ?? []), node]);
  }
  return [...byReason].map(([reason, nodes]) => `${nodes.join(', ')} could not prepare it: ${reason}`).join('; ');
}

export class RolloutDriver {
  /** Apps with a request to a node in flight (one at a time per app). */
  private readonly busy = new Set<string>();

  constructor(
    private readonly control: ControlPlane,
    private readonly timing: RolloutTiming,
    private readonly logger: Logger,
  ) {}

  /** One look at the app's rollout; starts at most one request, in the background. */
  drive(app: AppRecord, leader: { readonly node: NodeId; readonly report: GroupReport }): void {
    const rollout = app.rollout;
    if (rollout === undefined || this.busy.has(app.name)) return;
    const url = this.control.machine.state.nodes.get(leader.node)?.httpUrl;
    if (url === undefined) return;
    const base = `${url}/_admin/${encodeURIComponent(app.name)}`;
    if (rollout.activatedAt !== undefined) {
      this.validate(app, rollout, rollout.activatedAt, [...leader.report.voters, ...leader.report.learners]);
      return;
    }
    if (leader.report.activeHash === rollout.hash) {
      // Activated (by this leader's request whose answer was lost, or before a failover).
      this.run(app.name, () => this.control.propose({ op: 'app.activated', name: app.name, version: rollout.version, hash: rollout.hash }, 'control:rollout'));
      return;
    }
    if (rollout.appVersion === undefined) {
      if (rollout.abortRequested) {
        this.run(app.name, () => this.endAborted(app, rollout, 'aborted by an operator before it was staged', {}));
        return;
      }
      this.run(app.name, async () => {
        const bundle = this.control.machine.state.bundles.get(rollout.hash);
        if (bundle === undefined) throw new Error(`bundle ${rollout.hash} of ${app.name} is not in the control state`);
        const allowBreaking = app.versions.find((version) => version.version === rollout.version)?.allowBreaking === true;
        // A rollback brings back code that passed its checks when it was deployed; they are not
        // run again (they may fail on the very data that made the rollback necessary).
        const skipChecks = rollout.rollbackTo !== undefined;
        const staged = await postJson(`${base}/stage`, { bundle: { files: bundle.files }, allowBreaking, skipChecks }, stageTimeoutMs, this.control.clusterAuthorization);
        await this.control.propose({ op: 'app.rolloutStaged', name: app.name, version: rollout.version, appVersion: Number(staged.version) }, 'control:rollout');
      });
      return;
    }
    const members = [...leader.report.voters, ...leader.report.learners];
    const verdicts = verdictsOf(rollout, members, (node) => this.control.reports.report(node, app.name));
    const failed = [...verdicts].filter(([, verdict]) => verdict?.phase === 'failed');
    const pending = [...verdicts].filter(([, verdict]) => verdict?.phase !== 'prepared');
    let abortReason: string | undefined;
    if (rollout.abortRequested) abortReason = 'aborted by an operator';
    else if (failed.length > 0) abortReason = failureReason(failed);
    else if (pending.length > 0 && Date.now() - rollout.startedAt > this.timing.prepareTimeoutMs) {
      abortReason = `not prepared within ${this.timing.prepareTimeoutMs} ms by ${pending.map(([node, verdict]) => `${node} (${verdict?.phase ?? 'no report'})`).join(', ')}`;
    }
    if (abortReason !== undefined) {
      const reason = abortReason;
      this.run(app.name, async () => {
        await postJson(`${base}/abort`, { version: rollout.appVersion }, decideTimeoutMs, this.control.clusterAuthorization).catch((error: unknown) => {
          // Already aborted (an earlier leader's request went through): the record still ends.
          if (!(error instanceof Error) || !/not staged/.test(error.message)) throw error;
        });
        await this.endAborted(app, rollout, reason, recorded(verdicts));
      });
      return;
    }
    if (pending.length > 0) return; // still preparing
    this.run(app.name, async () => {
      const preparedAt = Date.now();
      let switchIndex: number;
      try {
        const activated = await postJson(`${base}/activate`, { version: rollout.appVersion, epoch: leader.report.epoch }, decideTimeoutMs, this.control.clusterAuthorization);
        switchIndex = Number(activated.index);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // Another activation won the epoch (a switch outside this control plane): give up ours.
        if (/stale activation|already active|aborted/.test(message)) {
          await this.endAborted(app, rollout, `activation refused by the app's group: ${message}`, recorded(verdicts));
          return;
        }
        throw error;
      }
      await this.control.propose({ op: 'app.activated', name: app.name, version: rollout.version, hash: rollout.hash, verdicts: recorded(verdicts), preparedAt, switchIndex }, 'control:rollout');
    });
  }

  /** The validation window of an activated version: its server-error rate over every replica,
   *  against the threshold; a breach rolls it back, the end of the window ends the rollout. */
  private validate(app: AppRecord, rollout: RolloutRecord, activatedAt: number, members: readonly NodeId[]): void {
    let requests = 0;
    let errors = 0;
    let checkRuns = 0;
    const failing: string[] = [];
    /** Failed checks' reasons, with the replicas that saw each. */
    const failedChecks = new Map<string, NodeId[]>();
    for (const member of members) {
      const report = this.control.reports.report(member, app.name);
      const checks = report?.checks;
      if (checks !== undefined && checks.hash === rollout.hash) {
        checkRuns += checks.runs;
        if (checks.failedRuns > 0) {
          const reason = checks.lastFailures.map((failure) => `check '${failure.name}' failed: ${failure.reason}`).join('; ');
          failedChecks.set(reason, [...(failedChecks.get(reason) ?? []), member]);
        }
      }
      const served = report?.served;
      if (served === undefined || served.hash !== rollout.hash) continue;
      requests += served.requests;
      errors += served.errors;
      if (served.errors > 0) failing.push(`${member} ${served.errors}/${served.requests}`);
    }
    const maxErrorRate = rollout.maxErrorRate ?? 0;
    const figures = `${errors} of ${requests} requests failed (${requests === 0 ? 0 : ((100 * errors) / requests).toFixed(1)} %)${checkRuns > 0 ? `, checks ran ${checkRuns} times` : ''}`;
    if (failedChecks.size > 0) {
      const seen = [...failedChecks].map(([reason, nodes]) => `${reason} (on ${nodes.join(', ')})`).join('; ');
      this.rollBack(app, rollout, `validation failed: ${seen}; rolled back to version ${rollout.previousVersion ?? 0}`);
      return;
    }
    if (errors > 0 && errors / Math.max(1, requests) > maxErrorRate) {
      this.rollBack(app, rollout, `validation failed: ${figures}, over the ${(100 * maxErrorRate).toFixed(1)} % threshold (${failing.join(', ')}); rolled back to version ${rollout.previousVersion ?? 0}`);
      return;
    }
    if (Date.now() - activatedAt < (rollout.validateForMs ?? 0)) return;
    this.run(app.name, () => this.control.propose({ op: 'app.validated', name: app.name, version: rollout.version, detail: `validated for ${rollout.validateForMs ?? 0} ms: ${figures}` }, 'control:validation'));
  }

  /** Ends the rollout rolled back: the control state then brings the previous version back. */
  private rollBack(app: AppRecord, rollout: RolloutRecord, reason: string): void {
    this.logger.warn({ app: app.name, version: rollout.version, reason }, 'validation failed');
    this.run(app.name, () => this.control.propose({ op: 'app.validationFailed', name: app.name, version: rollout.version, reason }, 'control:validation'));
  }

  private async endAborted(app: AppRecord, rollout: RolloutRecord, reason: string, verdicts: Record<NodeId, ReplicaVerdict>): Promise<void> {
    this.logger.warn({ app: app.name, version: rollout.version, reason }, 'rollout aborted');
    await this.control.propose({ op: 'app.deployFailed', name: app.name, version: rollout.version, reason, verdicts }, 'control:rollout');
  }

  private run(app: string, work: () => Promise<unknown>): void {
    this.busy.add(app);
    void work()
      .catch((error: unknown) => this.logger.warn({ err: error, app }, 'rollout step failed; it is retried'))
      .finally(() => this.busy.delete(app));
  }
}
