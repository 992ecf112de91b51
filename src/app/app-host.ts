// One app served by this node: its LMDB store, its log (local, or a Raft group), the state
// machine behind the log, the loaded versions of its code, and the change feed. Requests read
// the committed state through `activeRuntime()`; every change goes through `propose`.
import { join } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { matchesFilter } from '../realtime/filter.js';
import { ChangeHub } from '../realtime/hub.js';
import type { ChangeEvent } from '../model/change-event.js';
import type { ChangeSource, ReadSinceResult, SubscriptionFilter } from '../realtime/types.js';
import { diffSchemas } from '../schema/index.js';
import type { LogIndex } from '../model/ids.js';
import type { Bundle, LogEntry } from '../model/app-entries.js';
import type { Proposal, Proposer } from '../state/proposer.js';
import { SchemaCache } from '../state/schema-cache.js';
import { StateMachine, type AppliedState } from '../state/state-machine.js';
import { AppStore } from '../storage/app-store.js';
import { LocalLog, type CommitListener } from '../storage/local-log.js';
import { ExpirySweeper } from './expiry-sweeper.js';
import { loadRuntime, type AppRuntime } from './runtime.js';

/** The log an app writes through: local on a single node, a Raft group in a cluster. */
export interface ReplicatedLog extends Proposer {
  /** A linearizable read point, applied on this node when it resolves (ReadIndex). */
  readIndex(timeoutMs: number): Promise<LogIndex>;
  /** Whether this node may propose Stage/Activate itself (the single node, or the leader). */
  canDeploy(): boolean;
  /** False once the log can no longer take writes (a failed commit); health reports it. */
  healthy(): boolean;
  close(): void;
}

export interface ReplicationParts {
  readonly store: AppStore;
  readonly stateMachine: StateMachine;
  readonly onCommit: CommitListener;
  /** The state machine's state was replaced by a snapshot: reload versions from the store. */
  readonly onSnapshotInstalled: () => void;
}

export type ReplicationFactory = (parts: ReplicationParts) => ReplicatedLog;

export interface AppHostOptions {
  readonly name: string;
  /** This app's data directory (LMDB files, compiled code, snapshots). */
  readonly dataDir: string;
  /** Where app code resolves its own imports from (the app directory, if any). */
  readonly sourceDir: string;
  /** Change-feed window and log retention, in entries. */
  readonly retainEntries: number;
  readonly logger?: Logger;
  /** Default: the single-node local log. */
  readonly replication?: ReplicationFactory;
}

export type DeployOutcome =
  | { readonly status: 'unchanged'; readonly version: number }
  | { readonly status: 'activated'; readonly version: number; readonly index: LogIndex; readonly additive: readonly string[] }
  | { readonly status: 'aborted'; readonly version: number; readonly reason: string };

/** Upper bound on concurrent waiters for a future applied index (session consistency). */
const indexWaitersMax = 10_000;

function localReplication(retainEntries: number): ReplicationFactory {
  return ({ store, stateMachine, onCommit }) => {
    const log = new LocalLog(store, stateMachine, { retainEntries }, onCommit);
    return {
      propose: (entry) => log.propose(entry),
      readIndex: () => Promise.resolve(stateMachine.pendingState().appliedIndex),
      canDeploy: () => true,
      healthy: () => log.healthy(),
      close: () => undefined,
    };
  };
}

export class AppHost implements ChangeSource {
  readonly name: string;
  readonly store: AppStore;
  readonly hub: ChangeHub;
  readonly log: ReplicatedLog;
  private readonly stateMachine: StateMachine;
  private committed: AppliedState;
  /** Prepared (or preparing) versions: compiled and loaded, ready to serve. */
  private readonly prepared = new Map<number, Promise<AppRuntime>>();
  /** The prepared versions that finished loading, for switching synchronously at apply time. */
  private readonly loaded = new Map<number, AppRuntime>();
  private active: AppRuntime | undefined;
  private readonly activeWaiters = new Set<() => void>();
  private readonly waiters = new Set<{ index: LogIndex; wake: () => void }>();
  private deploying: Promise<DeployOutcome> = Promise.resolve({ status: 'unchanged', version: 0 });
  private readonly sweeper = new ExpirySweeper(this);

  private constructor(private readonly options: AppHostOptions) {
    this.name = options.name;
    this.store = AppStore.open(join(options.dataDir, 'lmdb'));
    this.stateMachine = new StateMachine(this.store, new SchemaCache(this.store), { changeWindowEntries: options.retainEntries });
    this.committed = this.stateMachine.pendingState();
    this.hub = new ChangeHub(this);
    const replication = options.replication ?? localReplication(options.retainEntries);
    this.log = replication({
      store: this.store,
      stateMachine: this.stateMachine,
      onCommit: (index, events, state) => this.onCommit(index, events, state),
      onSnapshotInstalled: () => this.onSnapshotInstalled(),
    });
    // A group may have applied entries while it was built (a bootstrap position).
    this.committed = this.stateMachine.pendingState();
  }

  /** Opens the app's store and loads the version that was active when it last ran. */
  static async open(options: AppHostOptions): Promise<AppHost> {
    const host = new AppHost(options);
    const { activeVersion } = host.committed;
    if (activeVersion !== 0) host.activate(activeVersion, await host.prepare(activeVersion));
    host.sweeper.start();
    return host;
  }

  appliedIndex(): LogIndex {
    return this.committed.appliedIndex;
  }

  appliedState(): AppliedState {
    return this.committed;
  }

  activeRuntime(): AppRuntime | undefined {
    return this.active;
  }

  /** The active runtime, waiting (bounded) while the active version is still being prepared. */
  async waitForRuntime(timeoutMs: number): Promise<AppRuntime | undefined> {
    if (this.active !== undefined || this.committed.activeVersion === 0) return this.active;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.activeWaiters.delete(wake);
        resolve();
      }, timeoutMs);
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.activeWaiters.add(wake);
    });
    return this.active;
  }

  propose(entry: LogEntry): Promise<Proposal> {
    return this.log.propose(entry);
  }

  /**
   * Stage, prepare and activate a bundle - the path a fleet-wide deploy takes. A bundle that
   * does not load, or whose schema change is breaking, is aborted and the active version keeps
   * serving. Deploys run one at a time.
   */
  deploy(bundle: Bundle): Promise<DeployOutcome> {
    const run = this.deploying.then(() => this.deployNow(bundle));
    this.deploying = run.catch(() => ({ status: 'unchanged', version: 0 }) as const);
    return run;
  }

  private async deployNow(bundle: Bundle): Promise<DeployOutcome> {
    const current = this.active;
    if (current !== undefined && current.hash === bundle.hash) return { status: 'unchanged', version: current.version };
    const version = this.committed.lastVersion + 1;
    await this.expectOk(this.log.propose({ kind: 'stage', version, bundle }), 'stage');
    let additive: string[] = [];
    try {
      const runtime = await this.prepare(version);
      if (current !== undefined) {
        const diff = diffSchemas(current.schema, runtime.schema);
        if (diff.breaking.length > 0) {
          throw new Error(`breaking schema change refused: ${diff.breaking.map((change) => change.description).join('; ')}`);
        }
        additive = diff.additive.map((change) => change.description);
      }
    } catch (error) {
      await this.expectOk(this.log.propose({ kind: 'abort', version }), 'abort');
      return { status: 'aborted', version, reason: error instanceof Error ? error.message : String(error) };
    }
    const proposal = await this.expectOk(this.log.propose({ kind: 'activate', version, epoch: this.committed.epoch }), 'activate');
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
        (loaded) => this.loaded.set(version, loaded),
        // A failed prepare may be retried by a later deploy of the same version number.
        () => this.prepared.delete(version),
      );
    }
    return runtime;
  }

  private activate(version: number, runtime: AppRuntime): void {
    if (this.committed.activeVersion !== version) return;
    this.active = runtime;
    for (const wake of this.activeWaiters) wake();
    this.activeWaiters.clear();
  }

  private onCommit(index: LogIndex, events: readonly ChangeEvent[], state: AppliedState): void {
    const previous = this.committed;
    this.committed = state;
    // Replicas prepare every staged version as soon as they apply its Stage entry.
    for (let version = previous.lastVersion + 1; version <= state.lastVersion; version++) {
      this.prepare(version).catch((error: unknown) => this.options.logger?.warn({ err: error, app: this.name, version }, 'version failed to prepare'));
    }
    if (state.activeVersion !== previous.activeVersion) this.switchActive(state.activeVersion);
    if (events.length > 0) this.hub.publish(events);
    for (const waiter of this.waiters) {
      if (waiter.index <= index) {
        this.waiters.delete(waiter);
        waiter.wake();
      }
    }
  }

  /** Serves `version` as soon as it is prepared here; until then nothing is served (a replica
   *  never answers with a version other than the active one). */
  private switchActive(version: number): void {
    const loaded = this.loaded.get(version);
    if (loaded !== undefined) {
      // The usual case: the version was prepared before it was activated. Switching here, in
      // the commit callback, means no request can observe the state after the Activate entry
      // with the old code.
      this.activate(version, loaded);
      return;
    }
    this.active = undefined;
    if (version === 0) return;
    this.prepare(version).then(
      (runtime) => this.activate(version, runtime),
      (error: unknown) => this.options.logger?.error({ err: error, app: this.name, version }, 'active version cannot be prepared on this node'),
    );
  }

  private onSnapshotInstalled(): void {
    const previous = this.committed;
    this.committed = this.stateMachine.pendingState();
    if (this.committed.activeVersion !== previous.activeVersion || this.active?.version !== this.committed.activeVersion) {
      this.switchActive(this.committed.activeVersion);
    }
    for (const waiter of this.waiters) {
      if (waiter.index <= this.committed.appliedIndex) {
        this.waiters.delete(waiter);
        waiter.wake();
      }
    }
  }

  /** Resolves true once `index` is applied here, false after `timeoutMs`. */
  waitForApplied(index: LogIndex, timeoutMs: number): Promise<boolean> {
    if (index <= this.committed.appliedIndex) return Promise.resolve(true);
    if (this.waiters.size >= indexWaitersMax) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        index,
        wake: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  readSince(since: number, filter: SubscriptionFilter): ReadSinceResult {
    const floor = this.store.metaNumber('changesFloor');
    if (since < floor) return { reset: true, oldestIndex: floor + 1 };
    const events: ChangeEvent[] = [];
    for (const { value } of this.store.changes.getRange({ start: since + 1, end: this.committed.appliedIndex + 1 })) {
      for (const event of value) if (matchesFilter(event, filter)) events.push(event);
    }
    return { events };
  }

  async close(): Promise<void> {
    this.sweeper.stop();
    this.hub.closeAll('server shutting down');
    await this.deploying.catch(() => undefined);
    this.log.close();
    await this.store.close();
  }
}
