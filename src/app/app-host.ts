// One app served by this node: its LMDB store, the Raft group that is its log (a one-voter
// group on a single node, a replicated one in a cluster), the state machine behind it, the
// loaded versions of its code, and the change feed. Requests read the committed state through
// `activeRuntime()`; every change goes through `propose`.
import { join } from 'node:path';
import { systemClock, type Clock } from '../group/clock.js';
import { DeadlineWaiters } from '../group/deadline-waiters.js';
import type { FatalHandler } from '../group/errors.js';
import { noTransport } from '../group/no-transport.js';
import { RaftGroup } from '../group/raft-group.js';
import { defaultGroupTiming, type GroupTiming } from '../group/timing.js';
import type { GroupTransport, MembershipListener } from '../group/types.js';
import type { NodeId } from '../model/ids.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { RaftGroupMetrics } from '../observability/metrics.js';
import { matchesFilter } from '../realtime/filter.js';
import { ChangeHub } from '../realtime/hub.js';
import type { ChangeEvent } from '../model/change-event.js';
import type { ChangeSource, ReadSinceResult, SubscriptionFilter } from '../realtime/types.js';
import { diffSchemas } from '../schema/index.js';
import type { LogIndex } from '../model/ids.js';
import type { Bundle, LogEntry } from '../model/app-entries.js';
import type { Proposal } from '../state/proposer.js';
import { SchemaCache } from '../state/schema-cache.js';
import { StateMachine, type AppliedState, type ApplyOutcome, type DurableOutcome } from '../state/state-machine.js';
import { AppStore, uint32KeyDatabases } from '../storage/app-store.js';
import { LmdbRaftStorage } from '../storage/raft-storage.js';
import { SnapshotFiles } from '../storage/snapshot-files.js';
import { appEntryCodec } from '../state/entry-codec.js';
import { describeFailures, type CheckFailure, type CheckRunner } from './checks.js';
import { ExpirySweeper } from './expiry-sweeper.js';
import { loadRuntime, type AppRuntime } from './runtime.js';

/** How this node takes part in the app's group. */
export interface AppGroupSettings {
  readonly nodeId: NodeId;
  /** Founding voters (a new group); empty when this node joins an existing group. */
  readonly initialVoters: readonly NodeId[];
  readonly transport: GroupTransport;
  /** Keep snapshot files for peers that need one (a one-voter group has no peers). */
  readonly shipsSnapshots: boolean;
  readonly timing: GroupTiming;
  readonly metrics: RaftGroupMetrics;
  readonly clock: Clock;
  readonly onMembershipChanged?: MembershipListener;
  readonly onFatal: FatalHandler;
}

export interface AppHostOptions {
  readonly name: string;
  /** This app's data directory (LMDB files, compiled code, snapshots). */
  readonly dataDir: string;
  /** Where app code resolves its own imports from (the app directory, if any). */
  readonly sourceDir: string;
  /** Change-feed window, in entries. */
  readonly retainEntries: number;
  readonly logger: Logger;
  readonly group: AppGroupSettings;
  /** Answers the app's declared checks; without it a version with checks cannot prepare. */
  readonly runChecks?: CheckRunner;
  /** This replica's verdict on a staged version changed (prepared or failed). */
  readonly onVerdict?: () => void;
}

/** The steps of preparing a version, in order. */
export type PrepareStep = 'load' | 'schema' | 'checks';

/** How far this replica got with a staged version (what it reports to the control plane). */
export interface VersionVerdict {
  readonly version: number;
  readonly hash: string;
  readonly phase: 'preparing' | 'prepared' | 'failed';
  /** The step under way while preparing, the one that failed once failed. */
  readonly step?: PrepareStep;
  /** Why it failed (load error, a breaking schema change the deploy did not allow, a check). */
  readonly reason?: string;
  /** Checks passed of those declared, once they ran. */
  readonly checks?: { readonly passed: number; readonly total: number };
}

/** One version as /_status lists it. */
export interface VersionSummary {
  readonly version: number;
  readonly status: string;
  readonly hash: string;
  readonly stagedIndex: LogIndex;
  /** null until an Activate entry made it active. */
  readonly activatedIndex: LogIndex | null;
}

/** The app's checks re-run against the active version during a validation window. */
export interface ValidationChecks {
  readonly hash: string;
  readonly runs: number;
  /** Runs with at least one failed check. */
  readonly failedRuns: number;
  /** The failures of the last failed run. */
  readonly lastFailures: readonly CheckFailure[];
}

export type DeployOutcome =
  | { readonly status: 'unchanged'; readonly version: number }
  | { readonly status: 'activated'; readonly version: number; readonly index: LogIndex; readonly additive: readonly string[] }
  | { readonly status: 'aborted'; readonly version: number; readonly reason: string };

/** Requests waiting for a just-activated version to finish loading on this node, at most. */
const runtimeWaitersMax = 10_000;
/** Loaded versions kept besides the active one (a rollback target, the one being staged). */
const preparedVersionsMax = 4;
/** The node id of a single-node (`lockstep dev`) app's one-voter group. */
export const singleNodeId: NodeId = 'dev';

const noopMetrics: RaftGroupMetrics = {
  leaderChanged: () => undefined,
  proposed: () => undefined,
  readyPersisted: () => undefined,
  committed: () => undefined,
  snapshot: () => undefined,
};

export class AppHost implements ChangeSource {
  readonly name: string;
  readonly store: AppStore;
  readonly hub: ChangeHub;
  readonly group: RaftGroup<LogEntry, ApplyOutcome>;
  private readonly stateMachine: StateMachine;
  /** Prepared (or preparing) versions: compiled and loaded, ready to serve. */
  private readonly prepared = new Map<number, Promise<AppRuntime>>();
  /** The prepared versions that finished loading, for switching synchronously at apply time. */
  private readonly loaded = new Map<number, AppRuntime>();
  /** This replica's verdict on each staged version it prepared (or is preparing). */
  private readonly verdicts = new Map<number, VersionVerdict>();
  /** The preparation under way (or done) of each staged version, ending with its verdict. */
  private readonly judging = new Map<number, Promise<VersionVerdict>>();
  /** Validation-window checks of the active version, when the control plane asked for them. */
  private validation: { hash: string; timer: NodeJS.Timeout; running: boolean; checks: ValidationChecks } | undefined;
  /** Requests this replica answered with the active version since it became active here, and
   *  how many of them failed on the server's side (5xx other than 503): the control plane
   *  watches a new version's error rate with them. */
  private served = { version: 0, hash: '', requests: 0, errors: 0 };
  private active: AppRuntime | undefined;
  private readonly runtimeWaiters: DeadlineWaiters<number, void>;
  private runtimeWaitSequence = 0;
  private deploying: Promise<DeployOutcome> = Promise.resolve({ status: 'unchanged', version: 0 });
  private readonly sweeper: ExpirySweeper;
  private ticker: NodeJS.Timeout | undefined;

  private constructor(private readonly options: AppHostOptions) {
    this.name = options.name;
    const { group } = options;
    this.store = AppStore.open(join(options.dataDir, 'lmdb'));
    this.stateMachine = new StateMachine(this.store, new SchemaCache(this.store), { changeWindowEntries: options.retainEntries });
    this.stateMachine.onApplied((outcomes, previous) => this.onApplied(outcomes, previous));
    this.hub = new ChangeHub(this);
    this.runtimeWaiters = new DeadlineWaiters({ label: 'requests waiting for a version to load', countMax: runtimeWaitersMax, clock: group.clock });
    const storage = new LmdbRaftStorage(this.store.root);
    if (storage.isEmpty() && this.stateMachine.lastAppliedIndex() > 0) {
      throw new Error(
        `${options.dataDir} holds app data without a Raft log (written by an older Lockstep's single-node log); move it away to start afresh`,
      );
    }
    this.group = new RaftGroup({
      groupId: options.name,
      nodeId: group.nodeId,
      storage,
      machine: this.stateMachine,
      codec: appEntryCodec,
      snapshots: group.shipsSnapshots
        ? new SnapshotFiles(join(options.dataDir, 'snapshots'), this.store.root, AppStore.appliedIndexOf, uint32KeyDatabases)
        : undefined,
      transport: group.transport,
      clock: group.clock,
      logger: options.logger.child({ group: options.name }),
      metrics: group.metrics,
      initialVoters: group.initialVoters,
      electionTicks: group.timing.electionTicks,
      heartbeatTicks: group.timing.heartbeatTicks,
      snapshotEveryEntries: group.timing.snapshotEveryEntries,
      compactMarginEntries: group.timing.compactMarginEntries,
      ...(group.onMembershipChanged === undefined ? {} : { onMembershipChanged: group.onMembershipChanged }),
      onFatal: group.onFatal,
    });
    // Only the leader sweeps expired records: followers would propose the same deletes.
    this.sweeper = new ExpirySweeper(this, options.logger);
    this.group.duties.add(this.sweeper);
  }

  /** Opens the app's store and group, and loads the version that was active when it last ran. */
  static async open(options: AppHostOptions): Promise<AppHost> {
    const host = new AppHost(options);
    const { activeVersion } = host.appliedState();
    if (activeVersion !== 0) host.activate(activeVersion, await host.prepare(activeVersion));
    // Versions staged before a restart and neither activated nor aborted yet: judge them again.
    for (const { value } of host.store.versions.getRange({})) if (value.status === 'staged') host.judge(value.version);
    return host;
  }

  /** The newest `limit` versions: each one's status, bundle hash and the indexes of its Stage and
   *  Activate entries (which version served at an index is the one activated last before it). */
  versionHistory(limit: number): VersionSummary[] {
    const history: VersionSummary[] = [];
    for (const { value } of this.store.versions.getRange({ reverse: true, limit })) {
      history.push({ version: value.version, status: value.status, hash: value.bundle.hash, stagedIndex: value.stagedIndex, activatedIndex: value.activatedIndex ?? null });
    }
    return history.reverse();
  }

  /** Staged versions not yet activated or aborted, with this replica's verdict on each. */
  stagedVerdicts(): VersionVerdict[] {
    const verdicts: VersionVerdict[] = [];
    for (const { value } of this.store.versions.getRange({ start: this.appliedState().activeVersion + 1 })) {
      if (value.status !== 'staged') continue;
      verdicts.push(this.verdicts.get(value.version) ?? { version: value.version, hash: value.bundle.hash, phase: 'preparing' });
    }
    return verdicts;
  }

  /** Prepares a staged version and records whether this replica could serve it: it loads, its
   *  schema change from the active version is additive (or the deploy allowed it), and the
   *  app's declared checks pass against it. */
  private judge(version: number): Promise<VersionVerdict> {
    const record = this.store.versions.get(version);
    const known = this.judging.get(version);
    if (known !== undefined) return known;
    if (record === undefined) return Promise.resolve({ version, hash: '', phase: 'failed', reason: `version ${version} was never staged` });
    const hash = record.bundle.hash;
    const step = (next: PrepareStep): void => {
      this.verdicts.set(version, { version, hash, phase: 'preparing', step: next });
    };
    const failed = (at: PrepareStep, reason: unknown): VersionVerdict => ({ version, hash, phase: 'failed', step: at, reason: reason instanceof Error ? reason.message : String(reason) });
    const run = async (): Promise<VersionVerdict> => {
      step('load');
      let runtime: AppRuntime;
      try {
        runtime = await this.prepare(version);
      } catch (error) {
        this.options.logger.warn({ err: error, app: this.name, version }, 'version failed to prepare');
        return failed('load', error);
      }
      step('schema');
      const current = this.active;
      const breaking = current === undefined ? [] : diffSchemas(current.schema, runtime.schema).breaking;
      if (breaking.length > 0 && record.allowBreaking !== true) {
        return failed('schema', `breaking schema change: ${breaking.map((change) => change.description).join('; ')} (deploy with --allow-breaking to accept it)`);
      }
      const total = runtime.config.checks.length;
      if (total === 0 || record.skipChecks === true) return { version, hash, phase: 'prepared' };
      step('checks');
      if (this.options.runChecks === undefined) return failed('checks', 'this node cannot run checks');
      try {
        const result = await this.options.runChecks(this, runtime);
        const checks = { passed: total - result.failed.length, total };
        return result.failed.length === 0 ? { version, hash, phase: 'prepared', checks } : { ...failed('checks', describeFailures(result)), checks };
      } catch (error) {
        return failed('checks', error);
      }
    };
    const judged = run();
    this.judging.set(version, judged);
    void judged.then((verdict) => {
      if (this.judging.get(version) !== judged) return;
      this.verdicts.set(version, verdict);
      this.options.onVerdict?.();
    });
    return judged;
  }

  /**
   * Re-runs the app's checks against the active version every `validation.checkEveryMs` while
   * the control plane validates `hash` (the heartbeat answer says so); undefined stops them.
   */
  validate(hash: string | undefined): void {
    const runtime = this.active;
    const wanted = hash !== undefined && runtime?.hash === hash && runtime.config.checks.length > 0 && this.options.runChecks !== undefined;
    if (this.validation !== undefined && (!wanted || this.validation.hash !== hash)) {
      clearInterval(this.validation.timer);
      this.validation = undefined;
    }
    if (!wanted || this.validation !== undefined || runtime === undefined) return;
    const run = this.options.runChecks;
    if (run === undefined) return;
    const checks: ValidationChecks = { hash: runtime.hash, runs: 0, failedRuns: 0, lastFailures: [] };
    const validation = {
      hash: runtime.hash,
      running: false,
      checks,
      timer: setInterval(() => {
        if (validation.running || this.active !== runtime) return;
        validation.running = true;
        run(this, runtime)
          .then(
            (result) => {
              const { checks } = validation;
              validation.checks = {
                hash: checks.hash,
                runs: checks.runs + 1,
                failedRuns: checks.failedRuns + (result.failed.length > 0 ? 1 : 0),
                lastFailures: result.failed.length > 0 ? result.failed : checks.lastFailures,
              };
            },
            (error: unknown) => this.options.logger.warn({ err: error, app: this.name }, 'validation checks could not run'),
          )
          .finally(() => {
            validation.running = false;
          });
      }, runtime.config.validation.checkEveryMs),
    };
    validation.timer.unref();
    this.validation = validation;
  }

  /** What the validation-window checks of the active version found so far, if they run. */
  validationChecks(): ValidationChecks | undefined {
    return this.validation?.checks;
  }

  /**
   * An app on a single node (`lockstep dev`): a one-voter group on the same host and the same
   * Raft storage as a cluster node's, with no network, ticked by the host itself.
   */
  static async openSingleNode(options: {
    readonly name: string;
    readonly dataDir: string;
    readonly sourceDir: string;
    readonly retainEntries: number;
    readonly logger?: Logger;
    readonly onFatal?: FatalHandler;
    readonly timing?: GroupTiming;
    readonly runChecks?: CheckRunner;
  }): Promise<AppHost> {
    const logger = options.logger ?? createLogger({ app: options.name });
    const timing = options.timing ?? { ...defaultGroupTiming, compactMarginEntries: options.retainEntries };
    const host = await AppHost.open({
      name: options.name,
      dataDir: options.dataDir,
      sourceDir: options.sourceDir,
      retainEntries: options.retainEntries,
      logger,
      ...(options.runChecks === undefined ? {} : { runChecks: options.runChecks }),
      group: {
        nodeId: singleNodeId,
        initialVoters: [singleNodeId],
        transport: noTransport,
        shipsSnapshots: false,
        timing,
        metrics: noopMetrics,
        clock: systemClock,
        onFatal:
          options.onFatal ??
          ((error, context) => {
            logger.fatal({ err: error, context }, 'app log stopped');
          }),
      },
    });
    host.ticker = setInterval(() => host.group.tick(), timing.tickMs);
    host.ticker.unref();
    return host;
  }

  appliedIndex(): LogIndex {
    return this.stateMachine.appliedIndex();
  }

  appliedState(): AppliedState {
    return this.stateMachine.committedState();
  }

  activeRuntime(): AppRuntime | undefined {
    return this.active;
  }

  /** False once the app's log can no longer take writes (a failed write, a broken invariant). */
  healthy(): boolean {
    return this.group.healthy();
  }

  /** The active runtime, waiting (bounded) while the active version is still being prepared. */
  async waitForRuntime(timeoutMs: number): Promise<AppRuntime | undefined> {
    if (this.active !== undefined || this.appliedState().activeVersion === 0) return this.active;
    const deadlineMs = this.options.group.clock.nowMs() + timeoutMs;
    await this.runtimeWaiters.wait(++this.runtimeWaitSequence, deadlineMs, undefined, () => `app ${this.name} version not loaded in time`).catch(() => undefined);
    return this.active;
  }

  /** Resolves once the entry is committed, durable and applied on this node. */
  async propose(entry: LogEntry): Promise<Proposal> {
    const committed = await this.group.propose(entry, this.options.group.timing.requestTimeoutMs);
    return { index: committed.index, result: committed.result.result };
  }

  /** A linearizable read point, applied on this node when it resolves (ReadIndex). */
  readIndex(timeoutMs: number): Promise<LogIndex> {
    return this.group.readIndex(Math.min(timeoutMs, this.options.group.timing.requestTimeoutMs));
  }

  /** Resolves true once `index` is applied here, false after `timeoutMs`. */
  waitForApplied(index: LogIndex, timeoutMs: number): Promise<boolean> {
    return this.group.waitForApplied(index, timeoutMs).then(
      () => true,
      () => false,
    );
  }

  /**
   * Stage, prepare and activate a bundle - the path a fleet-wide deploy takes. A bundle that
   * does not load, or whose schema change is breaking, is aborted and the active version keeps
   * serving. Deploys run one at a time.
   */
  deploy(bundle: Bundle, options: { readonly allowBreaking?: boolean } = {}): Promise<DeployOutcome> {
    const run = this.deploying.then(() => this.deployNow(bundle, options.allowBreaking === true));
    this.deploying = run.catch(() => ({ status: 'unchanged', version: 0 }) as const);
    return run;
  }

  /**
   * The first phase of a fleet-wide switch, driven by the control plane: stages the bundle (or
   * finds it already staged and not yet decided, so a retried request stages nothing twice).
   * Every replica prepares it when it applies the Stage entry and reports its verdict.
   */
  async stage(bundle: Bundle, options: { readonly allowBreaking: boolean; readonly skipChecks: boolean }): Promise<{ readonly version: number; readonly index: LogIndex }> {
    for (const { value } of this.store.versions.getRange({ start: this.appliedState().activeVersion + 1 })) {
      if (value.status === 'staged' && value.bundle.hash === bundle.hash) return { version: value.version, index: value.stagedIndex };
    }
    const version = this.appliedState().lastVersion + 1;
    const entry: LogEntry = { kind: 'stage', version, bundle, ...(options.allowBreaking ? { allowBreaking: true } : {}), ...(options.skipChecks ? { skipChecks: true } : {}) };
    const proposal = await this.expectOk(this.propose(entry), 'stage');
    return { version, index: proposal.index };
  }

  /** The second phase: activates a staged version if the activation epoch is still `epoch`
   *  (compare-and-set: a stale or concurrent switch fails). Resolves with what apply said. */
  async activateStaged(version: number, epoch: number): Promise<Proposal> {
    return this.propose({ kind: 'activate', version, epoch });
  }

  /** Gives up a staged version: nothing changes anywhere. */
  async abortStaged(version: number): Promise<Proposal> {
    return this.propose({ kind: 'abort', version });
  }

  private async deployNow(bundle: Bundle, allowBreaking: boolean): Promise<DeployOutcome> {
    const current = this.active;
    if (current !== undefined && current.hash === bundle.hash) return { status: 'unchanged', version: current.version };
    const version = this.appliedState().lastVersion + 1;
    await this.expectOk(this.propose({ kind: 'stage', version, bundle, ...(allowBreaking ? { allowBreaking: true } : {}) }), 'stage');
    // Applying the Stage entry started this replica's preparation (load, schema, checks).
    const verdict = await this.judge(version);
    if (verdict.phase !== 'prepared') {
      await this.expectOk(this.propose({ kind: 'abort', version }), 'abort');
      return { status: 'aborted', version, reason: verdict.reason ?? 'not prepared' };
    }
    let additive: string[] = [];
    const runtime = await this.prepare(version);
    if (current !== undefined) {
      // Allowed breaking changes are listed with the additive ones: the records stay as they
      // are (a removed attribute's values remain stored, unvalidated; old records may lack a
      // new required attribute), and indexes follow the new schema at activation.
      const diff = diffSchemas(current.schema, runtime.schema);
      additive = [...diff.breaking.map((change) => `BREAKING: ${change.description}`), ...diff.additive.map((change) => change.description)];
    }
    const proposal = await this.expectOk(this.propose({ kind: 'activate', version, epoch: this.appliedState().epoch }), 'activate');
    return { status: 'activated', version, index: proposal.index, additive };
  }

  private async expectOk(pending: Promise<Proposal>, what: string): Promise<Proposal> {
    const proposal = await pending;
    if (!proposal.result.ok) throw new Error(`${what} rejected: ${JSON.stringify(proposal.result)}`);
    return proposal;
  }

  /** Compiles and loads a staged version once; every caller shares the same attempt. */
  private prepare(version: number): Promise<AppRuntime> {
    let runtime = this.prepared.get(version);
    if (runtime === undefined) {
      const record = this.store.versions.get(version);
      if (record === undefined) return Promise.reject(new Error(`version ${version} was never staged`));
      runtime = loadRuntime({
        app: this.name,
        version,
        bundle: record.bundle,
        store: this.store,
        sourceDir: this.options.sourceDir,
        codeDir: join(this.options.dataDir, 'code'),
      });
      this.prepared.set(version, runtime);
      runtime.then(
        (loaded) => {
          this.loaded.set(version, loaded);
          this.forgetOldVersions();
        },
        // A failed prepare may be retried by a later deploy of the same version number.
        () => this.prepared.delete(version),
      );
    }
    return runtime;
  }

  /** Keeps the active version and the newest few others loaded; older ones are dropped. */
  private forgetOldVersions(): void {
    const keep = new Set([...this.prepared.keys()].sort((a, b) => b - a).slice(0, preparedVersionsMax));
    if (this.active !== undefined) keep.add(this.active.version);
    keep.add(this.appliedState().activeVersion);
    for (const version of [...this.prepared.keys()]) {
      if (keep.has(version)) continue;
      this.prepared.delete(version);
      this.loaded.delete(version);
    }
    const { activeVersion } = this.appliedState();
    for (const version of [...this.verdicts.keys()]) {
      if (version >= activeVersion) continue;
      this.verdicts.delete(version);
      this.judging.delete(version);
    }
  }

  /** Counts one answered request against the version that answered it. */
  recordAnswer(status: number): void {
    const runtime = this.active;
    if (runtime === undefined) return;
    if (this.served.version !== runtime.version || this.served.hash !== runtime.hash) this.served = { version: runtime.version, hash: runtime.hash, requests: 0, errors: 0 };
    this.served.requests += 1;
    if (status >= 500 && status !== 503) this.served.errors += 1;
  }

  /** What the active version has answered on this replica (see recordAnswer). */
  servedByActive(): { readonly version: number; readonly hash: string; readonly requests: number; readonly errors: number } {
    const runtime = this.active;
    if (runtime === undefined) return { version: 0, hash: '', requests: 0, errors: 0 };
    return this.served.hash === runtime.hash ? { ...this.served } : { version: runtime.version, hash: runtime.hash, requests: 0, errors: 0 };
  }

  private activate(version: number, runtime: AppRuntime): void {
    if (this.appliedState().activeVersion !== version) return;
    this.active = runtime;
    this.runtimeWaiters.resolveWhere(() => true, undefined);
  }

  /** Durable applies, in log order: prepare staged versions, switch the active one, publish. */
  private onApplied(outcomes: readonly DurableOutcome[], previous: AppliedState): void {
    const state = this.appliedState();
    // Replicas prepare every staged version as soon as they apply its Stage entry.
    for (let version = previous.lastVersion + 1; version <= state.lastVersion; version++) this.judge(version);
    const snapshotInstalled = outcomes.some((outcome) => outcome.fromSnapshot);
    if (state.activeVersion !== previous.activeVersion || (snapshotInstalled && this.active?.version !== state.activeVersion)) {
      this.switchActive(state.activeVersion);
    }
    // A snapshot skipped entries this node never applied: subscribers catch up from the change
    // window it brought (or get a reset), and then skip what that replay already covered.
    if (snapshotInstalled) this.hub.resync();
    const events: ChangeEvent[] = [];
    for (const outcome of outcomes) events.push(...outcome.result.events);
    if (events.length > 0) this.hub.publish(events);
  }

  /** Serves `version` as soon as it is prepared here; until then nothing is served (a replica
   *  never answers with a version other than the active one). */
  private switchActive(version: number): void {
    const loaded = this.loaded.get(version);
    if (loaded !== undefined) {
      // The usual case: the version was prepared before it was activated. Switching here, as
      // the Activate entry becomes durable, means no request can observe the state after it
      // with the old code.
      this.activate(version, loaded);
      return;
    }
    this.active = undefined;
    if (version === 0) return;
    this.prepare(version).then(
      (runtime) => this.activate(version, runtime),
      (error: unknown) => this.options.logger.error({ err: error, app: this.name, version }, 'active version cannot be prepared on this node'),
    );
  }

  readSince(since: number, filter: SubscriptionFilter): ReadSinceResult {
    const floor = this.store.metaNumber('changesFloor');
    if (since < floor) return { reset: true, oldestIndex: floor + 1 };
    const events: ChangeEvent[] = [];
    for (const { value } of this.store.changes.getRange({ start: since + 1, end: this.appliedIndex() + 1 })) {
      for (const event of value) if (matchesFilter(event, filter)) events.push(event);
    }
    return { events };
  }

  async close(): Promise<void> {
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.validate(undefined);
    this.hub.closeAll('server shutting down');
    await this.deploying.catch(() => undefined);
    this.group.stop();
    this.runtimeWaiters.rejectAll(() => new Error('app closing'));
    await this.store.close();
  }
}
