// One app served by this node: its LMDB store, its log, the state machine behind the log, the
// loaded versions of its code, and the change feed. Requests read the committed state through
// `activeRuntime()`; every change goes through `proposer.propose`.
import { join } from 'node:path';
import { diffSchemas } from '../schema/index.js';
import { matchesFilter } from '../realtime/filter.js';
import { ChangeHub } from '../realtime/hub.js';
import type { ChangeEvent, ChangeSource, ReadSinceResult, SubscriptionFilter } from '../realtime/types.js';
import type { Bundle, LogEntry, LogIndex } from '../state/entries.js';
import type { Proposal, Proposer } from '../state/proposer.js';
import { SchemaCache } from '../state/schema-cache.js';
import { StateMachine, type AppliedState } from '../state/state-machine.js';
import { AppStore } from '../storage/app-store.js';
import { LocalLog } from '../storage/local-log.js';
import { ExpirySweeper } from './expiry-sweeper.js';
import { loadRuntime, type AppRuntime } from './runtime.js';

export interface AppHostOptions {
  readonly name: string;
  /** This app's data directory (LMDB files, compiled code). */
  readonly dataDir: string;
  /** Where app code resolves its own imports from (the app directory). */
  readonly sourceDir: string;
  /** Change-feed window and log retention, in entries. */
  readonly retainEntries: number;
}

export type DeployOutcome =
  | { readonly status: 'unchanged'; readonly version: number }
  | { readonly status: 'activated'; readonly version: number; readonly index: LogIndex; readonly additive: readonly string[] }
  | { readonly status: 'aborted'; readonly version: number; readonly reason: string };

/** Upper bound on concurrent waiters for a future applied index (session consistency). */
const indexWaitersMax = 10_000;

export class AppHost implements ChangeSource {
  readonly name: string;
  readonly store: AppStore;
  readonly hub: ChangeHub;
  private readonly proposer: Proposer;
  private committed: AppliedState;
  private readonly runtimes = new Map<number, AppRuntime>();
  private active: AppRuntime | undefined;
  private readonly waiters = new Set<{ index: LogIndex; wake: () => void }>();
  private deploying: Promise<DeployOutcome> = Promise.resolve({ status: 'unchanged', version: 0 });
  private readonly sweeper = new ExpirySweeper(this);

  private constructor(private readonly options: AppHostOptions) {
    this.name = options.name;
    this.store = AppStore.open(join(options.dataDir, 'lmdb'));
    const stateMachine = new StateMachine(this.store, new SchemaCache(this.store), { changeWindowEntries: options.retainEntries });
    this.committed = stateMachine.pendingState();
    this.proposer = new LocalLog(this.store, stateMachine, { retainEntries: options.retainEntries }, (index, events, state) =>
      this.onCommit(index, events, state),
    );
    this.hub = new ChangeHub(this);
  }

  /** Opens the app's store and loads the version that was active when it last ran. */
  static async open(options: AppHostOptions): Promise<AppHost> {
    const host = new AppHost(options);
    const { activeVersion } = host.committed;
    if (activeVersion !== 0) {
      const record = host.store.versions.get(activeVersion);
      if (record === undefined) throw new Error(`active version ${activeVersion} has no stored bundle`);
      host.active = await host.load(activeVersion, record.bundle);
    }
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

  propose(entry: LogEntry): Promise<Proposal> {
    return this.proposer.propose(entry);
  }

  /**
   * Stage, prepare and activate a bundle - the path a fleet-wide deploy takes, on one node. A
   * bundle that does not load, or whose schema change is breaking, is aborted and the active
   * version keeps serving. Deploys run one at a time.
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
    await this.expectOk(this.proposer.propose({ kind: 'stage', version, bundle }), 'stage');
    let additive: string[] = [];
    try {
      const runtime = await this.load(version, bundle);
      if (current !== undefined) {
        const diff = diffSchemas(current.schema, runtime.schema);
        if (diff.breaking.length > 0) {
          throw new Error(`breaking schema change refused: ${diff.breaking.map((change) => change.description).join('; ')}`);
        }
        additive = diff.additive.map((change) => change.description);
      }
    } catch (error) {
      this.runtimes.delete(version);
      await this.expectOk(this.proposer.propose({ kind: 'abort', version }), 'abort');
      return { status: 'aborted', version, reason: error instanceof Error ? error.message : String(error) };
    }
    const proposal = await this.expectOk(this.proposer.propose({ kind: 'activate', version, epoch: this.committed.epoch }), 'activate');
    return { status: 'activated', version, index: proposal.index, additive };
  }

  private async expectOk(pending: Promise<Proposal>, what: string): Promise<Proposal> {
    const proposal = await pending;
    if (!proposal.result.ok) throw new Error(`${what} rejected: ${JSON.stringify(proposal.result)}`);
    return proposal;
  }

  private async load(version: number, bundle: Bundle): Promise<AppRuntime> {
    const runtime = await loadRuntime({
      app: this.name,
      version,
      bundle,
      store: this.store,
      sourceDir: this.options.sourceDir,
      codeDir: join(this.options.dataDir, 'code'),
    });
    this.runtimes.set(version, runtime);
    return runtime;
  }

  private onCommit(index: LogIndex, events: readonly ChangeEvent[], state: AppliedState): void {
    if (state.activeVersion !== this.committed.activeVersion) {
      const runtime = this.runtimes.get(state.activeVersion);
      // Only a prepared version can be activated on this node; anything else is a bug.
      if (runtime === undefined) throw new Error(`version ${state.activeVersion} activated at ${index} but was never prepared here`);
      this.active = runtime;
    }
    this.committed = state;
    if (events.length > 0) this.hub.publish(events);
    for (const waiter of this.waiters) {
      if (waiter.index <= index) {
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
    await this.store.close();
  }
}

