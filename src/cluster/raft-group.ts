// One app's Raft group on this node: a RawNode driven by the Ready loop, persisting into the
// app's LMDB environment, and the Proposer that the request layer writes through.
//
// The Ready loop does, for each Ready, in ONE LMDB write transaction (one fsync): install a
// received snapshot, append the new entries, record the hard state, and apply the committed
// entries to the state machine (with the applied index). Only after that commit are the Ready's
// messages sent and its outcomes delivered; then advance(). Applying in the same transaction
// that persists is safe: the transaction is atomic, so an entry is never applied without being
// durable, and never applied twice or skipped across a crash.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../observability/logger.js';
import type { RaftGroupMetrics } from '../observability/metrics.js';
import {
  BOOTSTRAP_INDEX,
  NONE,
  ProposalDroppedError,
  RawNode,
  decodeConfChange,
  defaultRaftConfig,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type Status,
} from '../raft/index.js';
import type { ChangeEvent } from '../realtime/types.js';
import type { LogEntry, LogIndex } from '../state/entries.js';
import type { Proposal, Proposer } from '../state/proposer.js';
import type { AppliedState, StateMachine } from '../state/state-machine.js';
import type { AppStore } from '../storage/app-store.js';
import type { CommitListener } from '../storage/local-log.js';
import { LmdbRaftStorage } from '../storage/raft-storage.js';
import { decodeProposal, encodeProposal } from './proposal-codec.js';
import { ReadIndexBatcher } from './read-batcher.js';
import { SnapshotFiles } from './snapshot-files.js';
import { ClusterUnavailableError, type GroupTransport } from './group-transport.js';

export interface RaftGroupOptions {
  readonly groupId: string;
  readonly nodeId: NodeId;
  readonly store: AppStore;
  readonly stateMachine: StateMachine;
  readonly transport: GroupTransport;
  readonly logger: Logger;
  readonly metrics: RaftGroupMetrics;
  readonly onCommit: CommitListener;
  /** Called after a snapshot from the leader replaced the state machine's state. */
  readonly onSnapshotInstalled: () => void;
  /** Founding voters, for a brand-new group (static bootstrap); empty for a joining node. */
  readonly initialVoters: readonly NodeId[];
  /** Where received and produced snapshots are kept. */
  readonly dataDir: string;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Take a state machine snapshot and compact the log every this many applied entries. */
  readonly snapshotEveryEntries: number;
  /** Entries kept in the log behind a snapshot, so slightly slow followers catch up from the log. */
  readonly compactMarginEntries: number;
}

interface PendingProposal {
  readonly resolve: (proposal: Proposal) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly startedMs: number;
  /** The leader this proposal went to (this node, or the leader it was forwarded to). */
  readonly leaderId: NodeId;
}

interface PendingRead {
  readonly resolve: (index: LogIndex) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Upper bound on proposals and reads waiting in this group at once. */
const pendingMax = 100_000;

export class RaftGroup implements Proposer {
  readonly groupId: string;
  readonly storage: LmdbRaftStorage;
  private readonly node: RawNode;
  private readonly snapshots: SnapshotFiles;
  private readonly pendingProposals = new Map<string, PendingProposal>();
  private readonly pendingReads = new Map<string, PendingRead>();
  private sequence = 0;
  private leaderId: NodeId = NONE;
  private processing = false;
  private scheduled = false;
  private stopped = false;
  private snapshotting = false;
  private lastSnapshotIndex: LogIndex;
  private readonly leaderWaiters = new Set<() => void>();

  constructor(private readonly options: RaftGroupOptions) {
    this.groupId = options.groupId;
    this.storage = new LmdbRaftStorage(options.store.root);
    this.snapshots = new SnapshotFiles(join(options.dataDir, 'snapshots'), options.store);
    if (this.storage.lastIndex() === 0 && options.initialVoters.length > 0) {
      this.storage.bootstrap({ voters: [...options.initialVoters], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
    }
    // The bootstrap snapshot holds only membership: the state machine passes over its index.
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (snapshotIndex === BOOTSTRAP_INDEX && options.stateMachine.pendingState().appliedIndex < BOOTSTRAP_INDEX) {
      options.store.root.transactionSync(() => options.stateMachine.applyNoop(BOOTSTRAP_INDEX));
    }
    this.lastSnapshotIndex = snapshotIndex;
    const config = {
      ...defaultRaftConfig(options.nodeId, this.storage, () => Math.random()),
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      applied: options.stateMachine.pendingState().appliedIndex,
      checkQuorum: true,
      preVote: true,
    };
    this.node = new RawNode(config);
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.schedule();
  }

  receive(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) {
      try {
        this.node.step(message);
      } catch (error) {
        this.options.logger.warn({ err: error, type: message.type, from: message.from }, 'dropped raft message');
      }
    }
    this.schedule();
  }

  reportUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.node.reportUnreachable(peer);
    this.schedule();
  }

  status(): Status {
    return this.node.status();
  }

  /** False once persisting a Ready failed and the group stopped. */
  healthy(): boolean {
    return !this.stopped;
  }

  leader(): NodeId {
    return this.leaderId;
  }

  isLeader(): boolean {
    return this.leaderId === this.options.nodeId;
  }

  /**
   * Proposes an app entry and answers once this node applied it. On a follower the core
   * forwards the proposal to the leader inside the regular Raft message stream, batched with
   * everything else sent to it; the entry carries this node's key, so the follower recognises
   * it when it applies it and answers with its own (identical, deterministic) result. A client
   * reading from this node afterwards therefore sees its write.
   */
  async propose(entry: LogEntry, timeoutMs = 5_000): Promise<Proposal> {
    const deadline = Date.now() + timeoutMs;
    // With no leader known the core would drop the proposal at once: wait (bounded) for one.
    await this.awaitLeader(deadline);
    return this.proposeHere(entry, deadline);
  }

  /** Proposes through this node's core (appended here on the leader, forwarded otherwise). */
  proposeHere(entry: LogEntry, deadline: number): Promise<Proposal> {
    if (this.pendingProposals.size >= pendingMax) return Promise.reject(new ClusterUnavailableError('too many proposals in flight'));
    const key = `${this.options.nodeId}:${++this.sequence}`;
    return new Promise<Proposal>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingProposals.delete(key);
        this.options.metrics.proposed('timeout');
        reject(new ClusterUnavailableError(`proposal not committed within the deadline (leader ${this.leaderId || 'unknown'})`));
      }, Math.max(1, deadline - Date.now()));
      this.pendingProposals.set(key, { resolve, reject, timer, startedMs: performance.now(), leaderId: this.leaderId });
      try {
        this.node.propose(encodeProposal({ key, entry }));
      } catch (error) {
        clearTimeout(timer);
        this.pendingProposals.delete(key);
        this.options.metrics.proposed('dropped');
        reject(error instanceof ProposalDroppedError ? new ClusterUnavailableError(error.message) : (error as Error));
        return;
      }
      this.schedule();
    });
  }

  /** A linearizable read point: the leader's commit index confirmed by a quorum (ReadIndex),
   *  applied on this node before it resolves. */
  async readIndex(timeoutMs = 5_000): Promise<LogIndex> {
    const deadline = Date.now() + timeoutMs;
    const leaderId = await this.awaitLeader(deadline);
    const index = leaderId === this.options.nodeId ? await this.readIndexHere(deadline) : await this.forwardedReads.read(deadline);
    await this.waitForApplied(index, deadline);
    return index;
  }

  /** A read point confirmed by this node as leader; concurrent reads share one round. */
  readIndexHere(deadline: number): Promise<LogIndex> {
    if (!this.isLeader()) return Promise.reject(new ClusterUnavailableError(`node ${this.options.nodeId} is not the leader of ${this.groupId}`));
    return this.leaderReads.read(deadline);
  }

  /** Reads on a follower share one ReadIndex call to the leader per round. */
  private readonly forwardedReads = new ReadIndexBatcher((deadline) => {
    const leaderId = this.leaderId;
    if (leaderId === NONE || leaderId === this.options.nodeId) return Promise.reject(new ClusterUnavailableError('the leader changed during a read'));
    return this.options.transport.readIndex(leaderId, this.groupId, Math.max(1, deadline - Date.now())).catch((error: unknown) => {
      throw error instanceof ClusterUnavailableError ? error : new ClusterUnavailableError(`read index from leader ${leaderId} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  });

  private readonly leaderReads = new ReadIndexBatcher((deadline) => this.readIndexRound(deadline));

  /** One ReadIndex round of the core: a heartbeat round with a unique context. */
  private readIndexRound(deadline: number): Promise<LogIndex> {
    if (!this.isLeader()) return Promise.reject(new ClusterUnavailableError(`node ${this.options.nodeId} is not the leader of ${this.groupId}`));
    if (this.pendingReads.size >= pendingMax) return Promise.reject(new ClusterUnavailableError('too many reads in flight'));
    const context = randomBytes(12);
    const key = context.toString('hex');
    return new Promise<LogIndex>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingReads.delete(key);
        reject(new ClusterUnavailableError('read index not confirmed by a quorum within the deadline'));
      }, Math.max(1, deadline - Date.now()));
      this.pendingReads.set(key, { resolve, reject, timer });
      this.node.readIndex(new Uint8Array(context));
      this.schedule();
    });
  }

  proposeConfChange(change: ConfChange): void {
    if (!this.isLeader()) throw new ClusterUnavailableError(`node ${this.options.nodeId} is not the leader of ${this.groupId}`);
    this.node.proposeConfChange(change);
    this.schedule();
  }

  transferLeadership(to: NodeId): void {
    this.node.transferLeadership(to);
    this.schedule();
  }

  /** Steps a snapshot message after its data arrived (the transport saved it). */
  async receiveSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<void> {
    await this.snapshots.receive(message.snapshot?.metadata.index ?? 0, data);
    this.receive([message]);
  }

  private async awaitLeader(deadline: number): Promise<NodeId> {
    while (this.leaderId === NONE) {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.stopped) throw new ClusterUnavailableError(`group ${this.groupId} has no leader`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.leaderWaiters.delete(wake);
          resolve();
        }, remaining);
        const wake = (): void => {
          clearTimeout(timer);
          resolve();
        };
        this.leaderWaiters.add(wake);
      });
    }
    return this.leaderId;
  }

  private waitForApplied(index: LogIndex, deadline: number): Promise<void> {
    return this.options.transport.waitForApplied(this.groupId, index, Math.max(1, deadline - Date.now())).then((applied) => {
      if (!applied) throw new ClusterUnavailableError(`index ${index} was not applied on this node within the deadline`);
    });
  }

  // ---------------------------------------------------------------- the Ready loop

  private schedule(): void {
    if (this.scheduled || this.processing || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.processReadies();
    });
  }

  private async processReadies(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (!this.stopped && this.node.hasReady()) {
        const ready = this.node.ready();
        await this.handleReady(ready);
        this.node.advance(ready);
      }
    } catch (error) {
      // A failed commit leaves memory ahead of the file; stop the group rather than diverge.
      this.options.logger.fatal({ err: error, group: this.groupId }, 'raft group stopped: persisting a Ready failed');
      this.stop();
      process.exitCode = 1;
      throw error;
    } finally {
      this.processing = false;
    }
    this.maybeSnapshot();
  }

  private async handleReady(ready: Ready): Promise<void> {
    if (ready.softState !== undefined) this.setLeader(ready.softState.leaderId);
    const applied: { index: LogIndex; key?: string; outcome: { result: Proposal['result']; events: ChangeEvent[] }; state: AppliedState }[] = [];
    let snapshotInstalled = false;
    const machine = this.options.stateMachine;
    const needsWrite = ready.snapshot !== undefined || ready.entries.length > 0 || ready.hardState !== undefined || ready.committedEntries.length > 0;
    // A leader may replicate its new entries while it writes them itself (Raft dissertation
    // 10.2.1): its own copy counts only once written, and every message that could tell a
    // follower of a commit covering them leaves with a later Ready, after this write. Appends
    // whose commit field is already durable here go out now; everything else (votes, append
    // acknowledgements, appends carrying a newer commit) waits for the write.
    const durableLast = this.storage.lastIndex();
    const early: Message[] = [];
    const late: Message[] = [];
    for (const message of ready.messages) {
      const leaderAppend = (message.type === 'app' || message.type === 'heartbeat') && message.commit <= durableLast && ready.snapshot === undefined;
      (leaderAppend && needsWrite ? early : late).push(message);
    }
    if (early.length > 0) this.send(early);
    const persistStartedMs = performance.now();
    if (needsWrite) {
      await this.options.store.root.transaction(() => {
        if (ready.snapshot !== undefined && ready.snapshot.metadata.index > this.storage.snapshot().metadata.index) {
          const index = ready.snapshot.metadata.index;
          this.snapshots.installInto(index);
          this.storage.applySnapshot(ready.snapshot.metadata);
          machine.reload();
          // The bootstrap snapshot carries membership only: pass over its index.
          if (index === BOOTSTRAP_INDEX && machine.pendingState().appliedIndex < index) machine.applyNoop(index);
          snapshotInstalled = true;
        }
        this.storage.append(ready.entries);
        if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
        for (const entry of ready.committedEntries) this.applyEntry(entry, applied);
      });
    }
    if (needsWrite) this.options.metrics.readyPersisted((performance.now() - persistStartedMs) / 1000, ready.entries.length);
    if (snapshotInstalled) {
      this.options.metrics.snapshot('installed');
      this.options.onSnapshotInstalled();
    }
    this.send(late);
    for (const item of applied) {
      this.options.onCommit(item.index, item.outcome.events, item.state);
      if (item.key === undefined) continue;
      const pending = this.pendingProposals.get(item.key);
      if (pending === undefined) continue;
      this.pendingProposals.delete(item.key);
      clearTimeout(pending.timer);
      this.options.metrics.proposed('committed');
      this.options.metrics.committed((performance.now() - pending.startedMs) / 1000);
      pending.resolve({ index: item.index, result: item.outcome.result });
    }
    for (const readState of ready.readStates) {
      const key = Buffer.from(readState.requestContext).toString('hex');
      const pending = this.pendingReads.get(key);
      if (pending === undefined) continue;
      this.pendingReads.delete(key);
      clearTimeout(pending.timer);
      pending.resolve(readState.index);
    }
  }

  /** Inside the Ready's write transaction. */
  private applyEntry(
    entry: Entry,
    applied: { index: LogIndex; key?: string; outcome: { result: Proposal['result']; events: ChangeEvent[] }; state: AppliedState }[],
  ): void {
    const machine = this.options.stateMachine;
    if (entry.index <= machine.pendingState().appliedIndex) return; // covered by an installed snapshot
    if (entry.type === 'confChange') {
      const change = decodeConfChange(entry.data);
      const confState: ConfState = this.node.applyConfChange(change);
      this.storage.setConfState(confState);
      machine.applyNoop(entry.index);
      this.options.transport.membershipChanged(this.groupId, change, confState);
      applied.push({ index: entry.index, outcome: { result: { ok: true }, events: [] }, state: machine.pendingState() });
      return;
    }
    if (entry.data.byteLength === 0) {
      // Still reported: the applied index is what ReadIndex and session reads wait for.
      machine.applyNoop(entry.index);
      applied.push({ index: entry.index, outcome: { result: { ok: true }, events: [] }, state: machine.pendingState() });
      return;
    }
    const proposal = decodeProposal(entry.data);
    const outcome = machine.apply(entry.index, proposal.entry);
    applied.push({ index: entry.index, key: proposal.key, outcome, state: machine.pendingState() });
  }

  private send(messages: readonly Message[]): void {
    const regular: Message[] = [];
    for (const message of messages) {
      if (message.type === 'snap') void this.sendSnapshot(message);
      else regular.push(message);
    }
    if (regular.length > 0) this.options.transport.send(this.groupId, regular);
  }

  private async sendSnapshot(message: Message): Promise<void> {
    try {
      await this.options.transport.sendSnapshot(this.groupId, message, this.snapshots.read(message.snapshot?.metadata.index ?? 0));
      this.node.reportSnapshot(message.to, true);
      this.options.metrics.snapshot('sent');
    } catch (error) {
      this.options.metrics.snapshot('sendFailed');
      this.options.logger.warn({ err: error, to: message.to, group: this.groupId }, 'snapshot transfer failed');
      this.node.reportSnapshot(message.to, false);
    }
    this.schedule();
  }

  private setLeader(leaderId: NodeId): void {
    if (leaderId === this.leaderId) return;
    this.leaderId = leaderId;
    this.options.metrics.leaderChanged();
    this.options.logger.info({ group: this.groupId, leader: leaderId || null }, 'leader changed');
    for (const wake of this.leaderWaiters) wake();
    this.leaderWaiters.clear();
    // Proposals that went to a leader that is no longer leading will rarely commit (only if it
    // replicated them in time), and the client should not wait out the full deadline to learn
    // that: answer now that the outcome is unknown, so it can retry against the new leader.
    for (const [key, pending] of this.pendingProposals) {
      if (pending.leaderId === leaderId) continue;
      clearTimeout(pending.timer);
      this.pendingProposals.delete(key);
      this.options.metrics.proposed('timeout');
      pending.reject(new ClusterUnavailableError(`the leader changed from ${pending.leaderId || 'none'} to ${leaderId || 'none'}; the write may or may not have been applied`));
    }
    // A read forwarded to the old leader (paused, dead) would hold every later read until its deadline.
    this.forwardedReads.failAll(new ClusterUnavailableError('the leader changed during a read'));
    if (leaderId !== this.options.nodeId) {
      // Reads confirmed by this node as leader can no longer complete.
      for (const [key, pending] of this.pendingReads) {
        clearTimeout(pending.timer);
        pending.reject(new ClusterUnavailableError('leadership changed during a read'));
        this.pendingReads.delete(key);
      }
      this.leaderReads.failAll(new ClusterUnavailableError('leadership changed during a read'));
    }
  }

  // ---------------------------------------------------------------- snapshots and compaction

  private maybeSnapshot(): void {
    const applied = this.options.stateMachine.pendingState().appliedIndex;
    if (this.snapshotting || this.stopped || applied - this.lastSnapshotIndex < this.options.snapshotEveryEntries) return;
    this.snapshotting = true;
    void this.takeSnapshot()
      .catch((error: unknown) => this.options.logger.error({ err: error, group: this.groupId }, 'snapshot failed'))
      .finally(() => {
        this.snapshotting = false;
      });
  }

  private async takeSnapshot(): Promise<void> {
    const taken = await this.snapshots.create();
    if (this.stopped || taken.index <= this.lastSnapshotIndex) return;
    const metadata = { index: taken.index, term: this.storage.term(taken.index), confState: taken.confState };
    const compactTo = taken.index - this.options.compactMarginEntries;
    // Without compaction nobody needs this snapshot: followers catch up from the log, and the
    // snapshot the storage names (and whose file is kept) stays the previous one.
    if (compactTo < this.storage.firstIndex()) {
      this.snapshots.discard(taken.index);
      return;
    }
    await this.options.store.root.transaction(() => this.storage.compact(compactTo, metadata));
    this.lastSnapshotIndex = taken.index;
    this.snapshots.retainOnly(taken.index);
    this.options.metrics.snapshot('taken');
    this.options.logger.info({ group: this.groupId, index: taken.index, compactedTo: compactTo }, 'snapshot taken');
  }

  stop(): void {
    this.stopped = true;
    for (const pending of this.pendingProposals.values()) {
      clearTimeout(pending.timer);
      pending.reject(new ClusterUnavailableError('node shutting down'));
    }
    this.pendingProposals.clear();
    for (const pending of this.pendingReads.values()) {
      clearTimeout(pending.timer);
      pending.reject(new ClusterUnavailableError('node shutting down'));
    }
    this.pendingReads.clear();
    this.leaderReads.failAll(new ClusterUnavailableError('node shutting down'));
    this.forwardedReads.failAll(new ClusterUnavailableError('node shutting down'));
  }
}
