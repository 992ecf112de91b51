// When a group snapshots its state machine and compacts its log: every `everyEntries` applied
// entries, keeping `compactMarginEntries` behind the snapshot so that a slightly slow follower
// still catches up from the log. A group without a snapshot store (one voter, nobody to ship a
// snapshot to) compacts the log without writing a snapshot file.
import type { GroupId, LogIndex } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import type { RaftGroupMetrics } from '../observability/metrics.js';
import type { ConfState } from '../raft/index.js';
import type { GroupStorage, ReplicatedStateMachine, SnapshotStore } from './types.js';

export interface SnapshotPolicyOptions {
  readonly groupId: GroupId;
  readonly storage: GroupStorage;
  readonly machine: ReplicatedStateMachine<unknown, unknown>;
  readonly snapshots: SnapshotStore | undefined;
  readonly everyEntries: number;
  readonly compactMarginEntries: number;
  readonly logger: Logger;
  readonly metrics: RaftGroupMetrics;
  readonly onFatal: (error: unknown) => void;
}

export class SnapshotPolicy {
  private lastSnapshotIndex: LogIndex;
  private taking = false;
  private stopped = false;

  constructor(private readonly options: SnapshotPolicyOptions) {
    this.lastSnapshotIndex = options.storage.snapshot().metadata.index;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Starts a snapshot in the background when enough entries were applied since the last one. */
  maybeSnapshot(): void {
    // A snapshot installed from the leader counts as the last one. Counting from an older one
    // took a snapshot at the installed index at once, found nothing to compact, and discarded
    // the file at that index: the installed snapshot's, which the log still starts from.
    this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, this.options.storage.snapshot().metadata.index);
    const applied = this.options.machine.appliedIndex();
    if (this.taking || this.stopped || applied - this.lastSnapshotIndex < this.options.everyEntries) return;
    this.taking = true;
    void this.take()
      .catch((error: unknown) => this.options.logger.error({ err: error, group: this.options.groupId }, 'snapshot failed'))
      .finally(() => {
        this.taking = false;
      });
  }

  private async take(): Promise<void> {
    const { storage, machine, snapshots } = this.options;
    const taken: { index: LogIndex; confState: ConfState } =
      snapshots === undefined ? { index: machine.appliedIndex(), confState: storage.initialState().confState } : await snapshots.create();
    if (this.stopped || taken.index <= this.lastSnapshotIndex) return;
    const compactTo = taken.index - this.options.compactMarginEntries;
    // Without compaction nobody needs this snapshot: followers catch up from the log, and the
    // snapshot the storage names (and whose file is kept) stays the previous one.
    if (compactTo < storage.firstIndex()) {
      snapshots?.discard(taken.index);
      return;
    }
    const metadata = { index: taken.index, term: storage.term(taken.index), confState: taken.confState };
    try {
      storage.compact(compactTo, metadata);
      await storage.write();
    } catch (error) {
      // Memory already says compacted: the storage no longer matches the file.
      this.options.onFatal(error);
      throw error;
    }
    this.lastSnapshotIndex = taken.index;
    // A snapshot installed from the leader while this write was in flight is what the log starts
    // from now, and the write that installed it may not be durable yet (a crash would leave the
    // log starting from ours): keep every file until our next snapshot.
    if (storage.snapshot().metadata.index === taken.index) snapshots?.retainOnly(taken.index);
    this.options.metrics.snapshot('taken');
    this.options.logger.info({ group: this.options.groupId, index: taken.index, compactedTo: compactTo }, 'snapshot taken');
  }
}
