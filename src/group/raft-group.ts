// One replicated group on this node, generic over its state machine: the RawNode, its Ready
// loop (ready-loop.ts), the requests waiting on it (proposals, reads, applied indexes, a
// leader), snapshots and compaction (snapshot-policy.ts) and its leader duties. It knows nothing
// of apps: an app's group and the control plane's group are both a RaftGroup.
import type { GroupId, LogIndex, NodeId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import type { RaftGroupMetrics } from '../observability/metrics.js';
import {
  BOOTSTRAP_INDEX,
  LocalMessageError,
  NONE,
  ProposalDroppedError,
  RaftInvariantError,
  RawNode,
  defaultRaftConfig,
  type ConfChange,
  type Message,
  type RaftConfig,
  type SoftState,
  type Status,
} from '../raft/index.js';
import type { Clock } from './clock.js';
import { DeadlineWaiters } from './deadline-waiters.js';
import { GroupUnavailableError, NotAppliedError, type FatalHandler } from './errors.js';
import { IndexWaiters } from './index-waiters.js';
import { LeaderDuties } from './leader-duties.js';
import { wrapProposal } from './proposal-envelope.js';
import { ReadIndexBatcher } from './read-batcher.js';
import { ReadyLoop, type DurableWrite } from './ready-loop.js';
import { SnapshotPolicy } from './snapshot-policy.js';
import type { EntryCodec, GroupStorage, GroupTransport, MembershipListener, ReplicatedStateMachine, SnapshotStore } from './types.js';

/** The core's bounds and election options a group may tune; production uses the core's
 *  defaults (and PreVote and CheckQuorum on), the simulator varies them per seed. Proposal
 *  forwarding is not tunable: followers' writes travel to the leader through it. */
export type RaftGroupTuning = Pick<
  RaftConfig,
  | 'checkQuorum'
  | 'preVote'
  | 'maxSizePerMsgBytes'
  | 'maxInflightMsgs'
  | 'maxInflightBytes'
  | 'maxUncommittedEntriesSizeBytes'
  | 'maxCommittedSizePerReadyBytes'
>;

export interface RaftGroupOptions<E, R> {
  readonly groupId: GroupId;
  readonly nodeId: NodeId;
  readonly storage: GroupStorage;
  readonly machine: ReplicatedStateMachine<E, R>;
  readonly codec: EntryCodec<E>;
  /** Undefined: the log is compacted without snapshot files (a group with no other member). */
  readonly snapshots: SnapshotStore | undefined;
  readonly transport: GroupTransport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: RaftGroupMetrics;
  /** Founding voters, for a brand-new group; empty for a node that joins an existing group. */
  readonly initialVoters: readonly NodeId[];
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Snapshot and compact the log every this many applied entries. */
  readonly snapshotEveryEntries: number;
  /** Entries kept in the log behind a snapshot, so slightly slow followers catch up from the log. */
  readonly compactMarginEntries: number;
  /** Overrides of the core's defaults; unset in production. */
  readonly raft?: Partial<RaftGroupTuning>;
  readonly onMembershipChanged?: MembershipListener;
  /** A broken invariant or a failed write: the group has stopped; the handler decides the rest. */
  readonly onFatal: FatalHandler;
}

/** A committed entry's position and the state machine's result for it. */
export interface Committed<R> {
  readonly index: LogIndex;
  readonly result: R;
}

/** Bounds on what may wait in one group at once. */
export const proposalsWaitingMax = 100_000;
export const readRoundsWaitingMax = 10_000;
export const indexWaitersMax = 10_000;
export const leaderWaitersMax = 10_000;

/** Read-round contexts are the round's key as UTF-8. */
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

interface ProposalMeta {
  readonly startedMs: number;
  /** The leader this proposal went to (this node, or the one it was forwarded to). */
  readonly leaderId: NodeId;
  /** Leader changes this group had seen when the proposal was made. */
  readonly leaderEpoch: number;
}

/**
 * After a new leader is known, how long proposals that went to the old one may still commit
 * before they are answered "outcome unknown". Proposals a leader held during a transfer reach
 * the new leader with its first message and commit within a round or two; proposals a crashed
 * leader took with it never will, and their clients should learn that well before the deadline.
 */
export const leaderChangeGraceMs = 500;

export class RaftGroup<E, R> {
  readonly groupId: GroupId;
  readonly nodeId: NodeId;
  readonly duties: LeaderDuties;
  private readonly node: RawNode;
  private readonly loop: ReadyLoop<E, R>;
  private readonly snapshotPolicy: SnapshotPolicy;
  private readonly proposals: DeadlineWaiters<string, Committed<R>, ProposalMeta>;
  private readonly readRounds: DeadlineWaiters<string, LogIndex>;
  private readonly appliedWaiters: IndexWaiters;
  private readonly leaderWaiters: DeadlineWaiters<number, void>;
  private readonly leaderReads: ReadIndexBatcher;
  private readonly forwardedReads: ReadIndexBatcher;
  /** Random per process start: keys of entries proposed before a restart never match. */
  private readonly incarnation: string;
  private sequence = 0;
  private leaderId: NodeId = NONE;
  /** Counts leader changes (proposals remember it, to tell which went to an earlier leader). */
  private leaderEpoch = 0;
  private stopped = false;

  constructor(private readonly options: RaftGroupOptions<E, R>) {
    this.groupId = options.groupId;
    this.nodeId = options.nodeId;
    const { storage, machine, clock } = options;
    this.incarnation = Math.floor(clock.random() * 2 ** 48).toString(36);
    if (storage.isEmpty() && options.initialVoters.length > 0) {
      storage.bootstrap({ voters: [...options.initialVoters], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
    }
    // The bootstrap snapshot holds only membership: the state machine passes over its index.
    if (storage.snapshot().metadata.index === BOOTSTRAP_INDEX && machine.lastAppliedIndex() < BOOTSTRAP_INDEX) {
      const result = storage.writeSync(() => machine.apply(BOOTSTRAP_INDEX, undefined)) as R;
      machine.applied([{ index: BOOTSTRAP_INDEX, result, fromSnapshot: false }]);
    }
    this.node = new RawNode({
      ...defaultRaftConfig(options.nodeId, storage, () => clock.random()),
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      applied: machine.lastAppliedIndex(),
      checkQuorum: true,
      preVote: true,
      ...options.raft,
    });
    // A group whose only voter is this node need not wait out an election timeout to lead.
    const { confState } = storage.initialState();
    if (confState.voters.length === 1 && confState.voters[0] === options.nodeId && confState.votersOutgoing.length === 0) this.node.campaign();
    this.duties = new LeaderDuties(options.logger);
    this.proposals = new DeadlineWaiters({ label: 'proposals', countMax: proposalsWaitingMax, clock });
    this.readRounds = new DeadlineWaiters({ label: 'read rounds', countMax: readRoundsWaitingMax, clock });
    this.appliedWaiters = new IndexWaiters('applied-index waiters', indexWaitersMax, clock, () => machine.appliedIndex());
    this.leaderWaiters = new DeadlineWaiters({ label: 'leader waiters', countMax: leaderWaitersMax, clock });
    this.leaderReads = new ReadIndexBatcher((deadlineMs) => this.readIndexRound(deadlineMs), clock);
    this.forwardedReads = new ReadIndexBatcher((deadlineMs) => this.forwardReadIndex(deadlineMs), clock);
    this.snapshotPolicy = new SnapshotPolicy({
      groupId: options.groupId,
      storage,
      machine,
      snapshots: options.snapshots,
      everyEntries: options.snapshotEveryEntries,
      compactMarginEntries: options.compactMarginEntries,
      logger: options.logger,
      metrics: options.metrics,
      onFatal: (error) => this.fatal(error, 'compacting the log'),
    });
    this.loop = new ReadyLoop({
      node: this.node,
      storage,
      machine,
      codec: options.codec,
      snapshots: options.snapshots,
      clock,
      logger: options.logger,
      metrics: options.metrics,
      send: (messages) => this.send(messages),
      onSoftState: (softState) => this.onSoftState(softState),
      onDurable: (write) => this.onDurable(write),
      onFatal: (error) => this.fatal(error, 'persisting a Ready'),
    });
  }

  // ---------------------------------------------------------------- inputs from the node

  tick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.loop.schedule();
  }

  receive(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) {
      try {
        this.node.step(message);
      } catch (error) {
        // A peer sent something the core refuses to take from the network: its problem, not
        // ours. Anything else thrown by the core is a broken invariant: stop.
        if (error instanceof LocalMessageError || error instanceof ProposalDroppedError) {
          this.options.logger.warn({ err: error, type: message.type, from: message.from }, 'dropped raft message');
          continue;
        }
        this.fatal(error, `stepping a ${message.type} message from ${message.from}`);
        return;
      }
    }
    this.loop.schedule();
  }

  reportUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.node.reportUnreachable(peer);
    this.loop.schedule();
  }

  /** Steps a snapshot message once its data arrived (the snapshot store saved it). */
  async receiveSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.options.snapshots === undefined) throw new GroupUnavailableError(`group ${this.groupId} takes no snapshots`);
    await this.options.snapshots.receive(message.snapshot?.metadata.index ?? 0, data);
    this.receive([message]);
  }

  // ---------------------------------------------------------------- what callers ask

  status(): Status {
    return this.node.status();
  }

  /** False once the group stopped (a failed write, a broken invariant, shutdown). */
  healthy(): boolean {
    return !this.stopped;
  }

  leader(): NodeId {
    return this.leaderId;
  }

  isLeader(): boolean {
    return this.leaderId === this.nodeId;
  }

  /** The last index applied by a durable write on this node. */
  appliedIndex(): LogIndex {
    return this.options.machine.appliedIndex();
  }

  /** The log's bounds and snapshot, for status pages. */
  logBounds(): { readonly firstIndex: LogIndex; readonly lastIndex: LogIndex; readonly snapshotIndex: LogIndex } {
    const { storage } = this.options;
    return { firstIndex: storage.firstIndex(), lastIndex: storage.lastIndex(), snapshotIndex: storage.snapshot().metadata.index };
  }

  /**
   * Proposes an entry and answers once this node applied it, durably. On a follower the core
   * forwards it to the leader inside the regular Raft message stream; the entry carries this
   * node's key, so the follower recognises it when it applies it and answers from its own
   * (identical, deterministic) result, and a read from this node afterwards sees the write.
   */
  async propose(entry: E, timeoutMs: number): Promise<Committed<R>> {
    const deadlineMs = this.options.clock.nowMs() + timeoutMs;
    // With no leader known the core would drop the proposal at once: wait (bounded) for one.
    await this.awaitLeader(deadlineMs).catch((error: unknown) => {
      throw error instanceof GroupUnavailableError ? new NotAppliedError(error.message) : error;
    });
    if (this.stopped) throw new NotAppliedError(`group ${this.groupId} is stopped`);
    if (this.proposals.size >= proposalsWaitingMax) throw new NotAppliedError(`too many proposals waiting in group ${this.groupId} (${proposalsWaitingMax})`);
    const key = `${this.nodeId}/${this.incarnation}/${++this.sequence}`;
    const leaderId = this.leaderId;
    const waiting = this.proposals.wait(key, deadlineMs, { startedMs: performance.now(), leaderId, leaderEpoch: this.leaderEpoch }, () => {
      this.options.metrics.proposed('timeout');
      return `proposal not committed within the deadline (leader ${this.leaderId || 'unknown'})`;
    });
    if (!this.proposals.has(key)) return waiting; // refused: too many waiting
    try {
      this.node.propose(wrapProposal(key, this.options.codec.encode(entry)));
    } catch (error) {
      this.options.metrics.proposed('dropped');
      if (error instanceof ProposalDroppedError) {
        this.proposals.reject(key, new NotAppliedError(error.message));
        return waiting;
      }
      // The codec could not encode the entry: the caller's error, nothing reached the log.
      if (!(error instanceof RaftInvariantError)) {
        this.proposals.reject(key, error instanceof Error ? error : new Error(String(error)));
        return waiting;
      }
      this.fatal(error, 'proposing an entry');
      return waiting;
    }
    this.loop.schedule();
    return waiting;
  }

  /** A linearizable read point: the leader's commit index confirmed by a quorum (ReadIndex),
   *  applied on this node before it resolves. */
  async readIndex(timeoutMs: number): Promise<LogIndex> {
    const deadlineMs = this.options.clock.nowMs() + timeoutMs;
    const leaderId = await this.awaitLeader(deadlineMs);
    const index = leaderId === this.nodeId ? await this.leaderReads.read(deadlineMs) : await this.forwardedReads.read(deadlineMs);
    await this.appliedWaiters.wait(index, deadlineMs);
    return index;
  }

  /** A read point confirmed by this node as leader (a follower's forwarded ReadIndex). */
  readIndexHere(deadlineMs: number): Promise<LogIndex> {
    if (!this.isLeader()) return Promise.reject(new GroupUnavailableError(`node ${this.nodeId} is not the leader of ${this.groupId}`));
    return this.leaderReads.read(deadlineMs);
  }

  /** Resolves once `index` is applied on this node; rejects (unavailable) after `timeoutMs`. */
  waitForApplied(index: LogIndex, timeoutMs: number): Promise<void> {
    return this.appliedWaiters.wait(index, this.options.clock.nowMs() + timeoutMs);
  }

  proposeConfChange(change: ConfChange): void {
    if (!this.isLeader()) throw new GroupUnavailableError(`node ${this.nodeId} is not the leader of ${this.groupId}`);
    this.node.proposeConfChange(change);
    this.loop.schedule();
  }

  transferLeadership(to: NodeId): void {
    this.node.transferLeadership(to);
    this.loop.schedule();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.loop.stop();
    this.snapshotPolicy.stop();
    this.duties.leadershipChanged(false);
    const shuttingDown = (): Error => new GroupUnavailableError(`group ${this.groupId} stopped on node ${this.nodeId}`);
    this.proposals.rejectAll(shuttingDown);
    this.readRounds.rejectAll(shuttingDown);
    this.appliedWaiters.rejectAll(shuttingDown);
    this.leaderWaiters.rejectAll(shuttingDown);
    this.leaderReads.failAll(shuttingDown);
    this.forwardedReads.failAll(shuttingDown);
  }

  // ---------------------------------------------------------------- internals

  private async awaitLeader(deadlineMs: number): Promise<NodeId> {
    while (this.leaderId === NONE) {
      if (this.stopped) throw new GroupUnavailableError(`group ${this.groupId} is stopped`);
      if (this.options.clock.nowMs() >= deadlineMs) throw new GroupUnavailableError(`group ${this.groupId} has no leader`);
      await this.leaderWaiters.wait(++this.sequence, deadlineMs, undefined, () => `group ${this.groupId} has no leader`);
    }
    return this.leaderId;
  }

  /** One ReadIndex round of the core: a heartbeat round with a unique context. */
  private readIndexRound(deadlineMs: number): Promise<LogIndex> {
    if (!this.isLeader()) return Promise.reject(new GroupUnavailableError(`node ${this.nodeId} is not the leader of ${this.groupId}`));
    const key = `${this.incarnation}/${++this.sequence}`;
    const waiting = this.readRounds.wait(key, deadlineMs, undefined, () => 'read index not confirmed by a quorum within the deadline');
    if (this.readRounds.has(key)) {
      this.node.readIndex(textEncoder.encode(key));
      this.loop.schedule();
    }
    return waiting;
  }

  /** A follower's reads share one ReadIndex call to the leader per round. */
  private forwardReadIndex(deadlineMs: number): Promise<LogIndex> {
    const leaderId = this.leaderId;
    if (leaderId === NONE || leaderId === this.nodeId) return Promise.reject(new GroupUnavailableError('the leader changed during a read'));
    const timeoutMs = Math.max(1, deadlineMs - this.options.clock.nowMs());
    return this.options.transport.readIndex(leaderId, timeoutMs).catch((error: unknown) => {
      throw error instanceof GroupUnavailableError ? error : new GroupUnavailableError(`read index from leader ${leaderId} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private onSoftState(softState: SoftState): void {
    const leaderId = softState.leaderId;
    if (leaderId === this.leaderId) return;
    this.leaderId = leaderId;
    this.options.metrics.leaderChanged();
    this.options.logger.info({ group: this.groupId, leader: leaderId || null }, 'leader changed');
    this.leaderEpoch += 1;
    if (leaderId !== NONE) {
      this.leaderWaiters.resolveWhere(() => true, undefined);
      // Proposals that went to an earlier leader may still commit: the old leader replicated
      // them in time, or held them during a transfer and handed them to this leader. Those it
      // did not will never commit, and their clients should not wait out the full deadline to
      // learn that: after a grace period, answer that the outcome is unknown.
      const epoch = this.leaderEpoch;
      this.options.clock.setTimer(() => {
        if (this.stopped) return;
        this.proposals.rejectWhere(
          (meta) => meta.leaderEpoch < epoch && meta.leaderId !== this.leaderId,
          () => {
            this.options.metrics.proposed('timeout');
            return new GroupUnavailableError(`the leader changed to ${leaderId}; the write may or may not have been applied`);
          },
        );
      }, leaderChangeGraceMs);
    }
    // A read forwarded to the old leader (paused, dead) would hold every later read until its deadline.
    this.forwardedReads.failAll(() => new GroupUnavailableError('the leader changed during a read'));
    if (leaderId !== this.nodeId) {
      // Reads confirmed by this node as leader can no longer complete.
      const lost = (): Error => new GroupUnavailableError('leadership changed during a read');
      this.readRounds.rejectAll(lost);
      this.leaderReads.failAll(lost);
    }
    this.duties.leadershipChanged(leaderId === this.nodeId);
  }

  private onDurable(write: DurableWrite<R>): void {
    const { machine } = this.options;
    if (write.applied.length > 0) machine.applied(write.applied);
    if (write.snapshotInstalled) this.options.metrics.snapshot('installed');
    for (const { change, confState } of write.membershipChanges) this.options.onMembershipChanged?.(this.groupId, change, confState);
    for (const item of write.applied) {
      if (item.proposalKey === undefined) continue;
      const meta = this.proposals.metaOf(item.proposalKey);
      if (meta === undefined) continue;
      this.options.metrics.proposed('committed');
      this.options.metrics.committed((performance.now() - meta.startedMs) / 1000);
      this.proposals.resolve(item.proposalKey, { index: item.index, result: item.result });
    }
    for (const readState of write.readStates) this.readRounds.resolve(textDecoder.decode(readState.requestContext), readState.index);
    this.appliedWaiters.advanceTo(machine.appliedIndex());
    this.snapshotPolicy.maybeSnapshot();
  }

  private send(messages: readonly Message[]): void {
    const regular: Message[] = [];
    for (const message of messages) {
      if (message.type === 'snap') void this.sendSnapshot(message);
      else regular.push(message);
    }
    if (regular.length > 0) this.options.transport.send(regular);
  }

  private async sendSnapshot(message: Message): Promise<void> {
    const { snapshots } = this.options;
    try {
      if (snapshots === undefined) throw new Error(`group ${this.groupId} keeps no snapshot files`);
      await this.options.transport.sendSnapshot(message, snapshots.read(message.snapshot?.metadata.index ?? 0));
      this.node.reportSnapshot(message.to, true);
      this.options.metrics.snapshot('sent');
    } catch (error) {
      this.options.metrics.snapshot('sendFailed');
      this.options.logger.warn({ err: error, to: message.to, group: this.groupId }, 'snapshot transfer failed');
      this.node.reportSnapshot(message.to, false);
    }
    this.loop.schedule();
  }

  private fatal(error: unknown, context: string): void {
    if (this.stopped) return;
    this.stop();
    this.options.onFatal(error, `group ${this.groupId}: ${context}`);
  }
}
