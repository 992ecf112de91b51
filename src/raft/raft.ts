// The Raft state machine (Ongaro & Ousterhout; etcd-io/raft's raft.go is the model). It reacts
// to messages and ticks by changing in-memory state and queueing outgoing messages; RawNode
// turns that into Ready batches for the host. No I/O, no clock, no global randomness here.
import { decodeConfChange, encodeConfChange } from './codec.js';
import { applyConfChangeTo, restoreConfState, type ChangerResult } from './confchange.js';
import { validateRaftConfig } from './config.js';
import { buildMessage, CAMPAIGN_TRANSFER_CONTEXT, voteResponseType, type MessageInit } from './messages.js';
import { Inflights } from './inflights.js';
import { Progress } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import { isJoint, ProgressTracker, type ProgressMap } from './tracker.js';
import {
  CompactedError,
  NONE,
  ProposalDroppedError,
  SnapshotTemporarilyUnavailableError,
  UnavailableError,
  type ConfChange,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type LogIndex,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Snapshot,
  type SoftState,
  type StateRole,
  type Term,
} from './types.js';
import { assert, bytesEqual, EMPTY_BYTES, payloadsBytes } from './util.js';

type CampaignKind = 'preElection' | 'election' | 'transfer';

/** Bound on ReadIndex requests a new leader parks until it has committed an entry of its term. */
export const READ_INDEX_PARKED_COUNT_MAX = 4096;

/** Proposals held during one leadership transfer, at most; beyond it they are dropped. */
export const heldProposalsMax = 1024;

export class Raft {
  readonly id: NodeId;
  term: Term = 0;
  vote: NodeId = NONE;
  readonly raftLog: RaftLog;
  trk: ProgressTracker;
  role: StateRole = 'follower';
  isLearner = false;
  /** Outgoing messages, drained into each Ready. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leaderId: NodeId = NONE;
  /** Target of an ongoing leader transfer, NONE otherwise. */
  leadTransferee: NodeId = NONE;
  /** Index of the last conf change the leader appended; no new change until it is applied. */
  pendingConfIndex: LogIndex = 0;
  /** Payload bytes appended by this leader and not yet committed+applied (backpressure). */
  uncommittedBytes = 0;
  readOnly = new ReadOnly();
  /** Proposals were appended since the last Ready; their appends are not broadcast yet. */
  appendBroadcastPending = false;
  /** ReadIndex requests received before this leader committed an entry of its own term. */
  parkedReadIndexMessages: Message[] = [];
  /**
   * Proposals that arrived while leadership was being transferred (local or forwarded), or
   * forwarded ones that reached this node while it knew no leader (it just stepped down, or an
   * election is on). Held, never appended while held: a leader whose transfer failed appends
   * them, a follower sends them to its leader as soon as it knows one, a node elected leader
   * appends them. Each is appended at most once, so the writes that race a leader change are
   * not dropped. Held ones not placed within two election timeouts are dropped (their proposers
   * have given up by then).
   */
  heldProposals: { readonly message: Message; readonly heldAtTick: number }[] = [];
  /** Ticks since start (ages held proposals). */
  private ticks = 0;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly config: RaftConfig;

  constructor(config: RaftConfig) {
    validateRaftConfig(config);
    this.config = config;
    this.id = config.id;
    this.raftLog = new RaftLog(config.storage, config.maxCommittedSizePerReadyBytes);
    const { hardState, confState } = config.storage.initialState();
    this.trk = new ProgressTracker(config.maxInflightMsgs, config.maxInflightBytes);
    const restored = restoreConfState(this.changerInput(), confState);
    this.switchToConfig(restored);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadHardState(hardState);
    if (config.applied > 0) this.raftLog.appliedTo(config.applied);
    this.becomeFollower(this.term, NONE);
  }

  private loadHardState(hardState: HardState): void {
    assert(
      hardState.commit >= this.raftLog.committed && hardState.commit <= this.raftLog.lastIndex(),
      `stored commit ${hardState.commit} outside [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hardState.commit;
    this.term = hardState.term;
    this.vote = hardState.vote;
  }

  softState(): SoftState {
    return { leaderId: this.leaderId, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  // ---- sending -------------------------------------------------------------------------

  /** Queues a message. Vote traffic carries an explicit term (a pre-vote is sent for a future
   *  term); proposals and read requests forwarded to the leader are local in nature and carry
   *  none; everything else carries the current term. */
  private send(init: MessageInit): void {
    const from = init.from ?? this.id;
    let term: Term;
    if (init.type === 'vote' || init.type === 'voteResp' || init.type === 'preVote' || init.type === 'preVoteResp') {
      assert(init.term !== undefined && init.term !== 0, `${init.type} must carry a term`);
      term = init.term;
    } else {
      assert(init.term === undefined, `${init.type} must not set a term explicitly`);
      term = init.type === 'prop' || init.type === 'readIndex' ? 0 : this.term;
    }
    this.msgs.push(buildMessage(init, from, term));
  }

  /** Sends an append (or a snapshot when the entries are compacted) if the flow allows.
   *  Returns whether a message was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.trk.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    let entries: Entry[] = [];
    let compacted = prevTerm === undefined;
    // A full pipeline sends only an empty append: it gets acked or rejected, which frees
    // inflight slots even if every earlier message was lost.
    if (!compacted && (progress.state !== 'replicate' || !progress.inflights.full())) {
      try {
        entries = this.raftLog.entries(progress.next, this.config.maxSizePerMsgBytes);
      } catch (error) {
        if (!(error instanceof CompactedError || error instanceof UnavailableError)) throw error;
        compacted = true;
      }
    }
    if (compacted) return this.maybeSendSnapshot(to, progress);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm!, entries, commit: this.raftLog.committed });
    progress.sentEntries(entries.length, payloadsBytes(entries));
    return true;
  }

  private maybeSendSnapshot(to: NodeId, progress: Progress): boolean {
    // A follower we have not heard from lately is probably down; don't build and ship a
    // snapshot into the void.
    if (!progress.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (error) {
      if (error instanceof SnapshotTemporarilyUnavailableError) return false;
      throw error;
    }
    assert(snapshot.metadata.index !== 0, 'need a non-empty snapshot for a compacted follower');
    progress.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: 'snap', to, snapshot });
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, context: Uint8Array | undefined): void {
    // Never tell a follower to commit beyond what it is known to have: its log may still
    // hold conflicting entries past its match index.
    const progress = this.trk.progress.get(to)!;
    const commit = Math.min(progress.match, this.raftLog.committed);
    this.send(context === undefined ? { type: 'heartbeat', to, commit } : { type: 'heartbeat', to, commit, context });
  }

  private bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(context: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, context);
    });
  }

  // ---- role transitions ----------------------------------------------------------------

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.leaderId = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.electionTicks + Math.floor(this.config.random() * this.config.electionTicks);
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    const fresh: ProgressMap = new Map();
    this.trk.visit((id, old) => {
      const progress = new Progress({
        match: id === this.id ? lastIndex : 0,
        next: lastIndex + 1,
        inflights: new Inflights(this.trk.inflightCountMax, this.trk.inflightBytesMax),
        isLearner: old.isLearner,
        recentActive: id === this.id,
      });
      fresh.set(id, progress);
    });
    this.trk.setConfig(this.trk.config, fresh);
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly = new ReadOnly();
    this.parkedReadIndexMessages = [];
  }

  becomeFollower(term: Term, leaderId: NodeId): void {
    this.reset(term);
    this.leaderId = leaderId;
    this.role = 'follower';
    this.forwardHeldProposals();
  }

  /** A follower that knows its leader sends it the proposals held during a transfer. */
  private forwardHeldProposals(): void {
    if (this.heldProposals.length === 0 || this.role !== 'follower' || this.leaderId === NONE) return;
    const held = this.heldProposals;
    this.heldProposals = [];
    for (const { message } of held) this.msgs.push({ ...message, to: this.leaderId });
  }

  /** A leader whose transfer ended without handing over appends what it held meanwhile. A
   *  proposal it can no longer take (backpressure) is dropped, as the network might have. */
  private appendHeldProposals(): void {
    if (this.heldProposals.length === 0 || this.role !== 'leader' || this.leadTransferee !== NONE) return;
    const held = this.heldProposals;
    this.heldProposals = [];
    for (const { message } of held) {
      try {
        this.handleProposal(message);
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
    }
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate directly');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate directly');
    // A pre-candidate does not bump its term or drop its vote: a failed pre-vote must leave no trace.
    this.trk.resetVotes();
    this.leaderId = NONE;
    this.role = 'preCandidate';
  }

  private becomeLeader(): void {
    assert(this.role !== 'follower', 'follower cannot become leader directly');
    this.reset(this.term);
    this.leaderId = this.id;
    this.role = 'leader';
    const self = this.trk.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively treat every entry in the log as a possibly pending conf change; together
    // with the "committed in own term" check in stepLeader no change is accepted before the
    // empty entry below commits.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The empty entry of the new term: once committed it commits everything before it (§5.4.2)
    // and it unblocks ReadIndex (§6.4).
    const appended = this.appendEntries([{ type: 'normal', data: EMPTY_BYTES }]);
    assert(appended, 'empty entry must never be refused');
    // Elected again before it could hand over what it held during a transfer.
    this.appendHeldProposals();
  }

  // ---- ticks ---------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.heldProposals.length > 0) {
      const oldest = this.ticks - 2 * this.config.electionTicks;
      this.heldProposals = this.heldProposals.filter((held) => held.heldAtTick > oldest);
    }
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Holds a forwarded proposal that reached a node without a known leader (see heldProposals). */
  private holdForwarded(message: Message): boolean {
    if (this.steppingLocalProposal || this.heldProposals.length >= heldProposalsMax) return false;
    this.heldProposals.push({ message, heldAtTick: this.ticks });
    return true;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(buildMessage({ type: 'hup', to: this.id }, this.id, 0));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.step(buildMessage({ type: 'checkQuorum', to: this.id }, this.id, 0));
      // A transfer that did not finish within an election timeout has failed.
      if (this.role === 'leader' && this.leadTransferee !== NONE) {
        this.leadTransferee = NONE;
        this.appendHeldProposals();
      }
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.step(buildMessage({ type: 'beat', to: this.id }, this.id, 0));
    }
  }

  // ---- elections -----------------------------------------------------------------------

  /** Voters that are not learners and have no snapshot waiting to be persisted may campaign. */
  promotable(): boolean {
    const self = this.trk.progress.get(this.id);
    return self !== undefined && !self.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  private hup(kind: CampaignKind): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // A conf change that is committed but not applied may remove us or change the quorum;
    // campaigning under the old config could elect a leader the new config does not allow.
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(kind);
  }

  private hasUnappliedConfChanges(): boolean {
    const log = this.raftLog;
    if (log.applied >= log.committed) return false;
    let lo = Math.max(log.applied + 1, log.firstIndex());
    const hi = log.committed + 1;
    while (lo < hi) {
      const page = log.slice(lo, hi, this.config.maxCommittedSizePerReadyBytes);
      for (const entry of page) if (entry.type === 'confChange') return true;
      lo += page.length;
    }
    return false;
  }

  private campaign(kind: CampaignKind): void {
    let voteType: 'vote' | 'preVote';
    let term: Term;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      // Ask for votes in the term we would campaign in, without moving to it yet.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    this.trk.recordVote(this.id, true);
    if (this.trk.tallyVotes() === 'won') {
      // A single-voter group wins on its own vote.
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      const init: MessageInit = { type: voteType, to: id, term, index: lastIndex, logTerm: lastTerm };
      this.send(kind === 'transfer' ? { ...init, context: CAMPAIGN_TRANSFER_CONTEXT } : init);
    }
  }

  // ---- the message entry point ---------------------------------------------------------

  step(message: Message): void {
    if (message.term === 0) {
      // local message
    } else if (message.term > this.term) {
      if (message.type === 'vote' || message.type === 'preVote') {
        const force = bytesEqual(message.context, CAMPAIGN_TRANSFER_CONTEXT);
        // Leader stickiness: while we heard from a live leader within the election timeout,
        // a vote request comes from a node that merely lost contact (a disruptive rejoin);
        // ignore it without even bumping our term. A leader-transfer campaign is legitimate.
        const inLease = this.config.checkQuorum && this.leaderId !== NONE && this.electionElapsed < this.config.electionTicks;
        if (!force && inLease) return;
      }
      if (message.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (message.type === 'preVoteResp' && !message.reject) {
        // The term in a granted pre-vote is the one we will campaign in, not a newer leader's.
      } else if (message.type === 'app' || message.type === 'heartbeat' || message.type === 'snap') {
        this.becomeFollower(message.term, message.from);
      } else {
        this.becomeFollower(message.term, NONE);
      }
    } else if (message.term < this.term) {
      if ((this.config.checkQuorum || this.config.preVote) && (message.type === 'heartbeat' || message.type === 'app')) {
        // A stale leader (e.g. after a partition) would never learn of the new term when its
        // followers' terms only rose through pre-votes that it ignores; tell it.
        this.send({ type: 'appResp', to: message.from });
      } else if (message.type === 'preVote') {
        // Reject explicitly so a pre-candidate with a stale term learns ours.
        this.send({ type: 'preVoteResp', to: message.from, term: this.term, reject: true });
      }
      // Anything else from an older term — including append acknowledgements and votes —
      // says nothing about the current term and is dropped.
      return;
    }

    switch (message.type) {
      case 'hup':
        this.hup(this.config.preVote ? 'preElection' : 'election');
        return;
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(message, message.type);
        return;
      default:
        switch (this.role) {
          case 'leader':
            this.stepLeader(message);
            return;
          case 'candidate':
          case 'preCandidate':
            this.stepCandidate(message);
            return;
          case 'follower':
            this.stepFollower(message);
            return;
        }
    }
  }

  private handleVoteRequest(message: Message, type: 'vote' | 'preVote'): void {
    const canVote =
      this.vote === message.from || // a repeated request we already granted
      (this.vote === NONE && this.leaderId === NONE) || // not voted and no leader known in this term
      (type === 'preVote' && message.term > this.term); // a pre-vote for a future term
    if (canVote && this.raftLog.isUpToDate(message.index, message.logTerm)) {
      // Grant in the message's term: for a pre-vote that is the candidate's future term, which
      // the pre-candidate recognizes as its own.
      this.send({ type: voteResponseType(type), to: message.from, term: message.term });
      if (type === 'vote') {
        // The vote lands in the HardState of the same Ready as this response, so the host
        // persists it before the response leaves (RawNode's Ready contract).
        this.electionElapsed = 0;
        this.vote = message.from;
      }
    } else {
      this.send({ type: voteResponseType(type), to: message.from, term: this.term, reject: true });
    }
  }

  // ---- leader --------------------------------------------------------------------------

  private stepLeader(message: Message): void {
    switch (message.type) {
      case 'beat':
        this.bcastHeartbeat(this.readOnly.lastPendingToken());
        return;
      case 'checkQuorum':
        if (!this.trk.quorumActive()) {
          // Partitioned away from a quorum: step down so that clients go elsewhere, and so
          // that this node stops serving reads as if it were leader.
          this.becomeFollower(this.term, NONE);
        }
        this.trk.visit((id, progress) => {
          if (id !== this.id) progress.recentActive = false;
        });
        return;
      case 'prop':
        this.withDroppedProposalsReported(message, () => this.handleProposal(message));
        return;
      case 'readIndex':
        this.handleReadIndex(message);
        return;
      default:
        break;
    }
    const progress = this.trk.progress.get(message.from);
    if (progress === undefined) return; // from a node no longer in the configuration
    switch (message.type) {
      case 'appResp':
        this.handleAppendResponse(message, progress);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(message, progress);
        return;
      case 'snapStatus':
        if (progress.state !== 'snapshot') return;
        if (message.reject) progress.pendingSnapshot = 0;
        progress.becomeProbe();
        // Wait for an acknowledgement or heartbeat response before probing again: the
        // follower may still be applying the snapshot.
        progress.msgAppFlowPaused = true;
        return;
      case 'unreachable':
        // Appends were probably lost; stop pipelining optimistically and probe instead.
        if (progress.state === 'replicate') progress.becomeProbe();
        return;
      case 'transferLeader':
        this.handleTransferLeader(message, progress);
        return;
      default:
        return;
    }
  }

  /** A dropped local proposal is reported to the caller (propose() throws); a dropped
   *  forwarded one is dropped silently, as the network might have: the proposer's host times
   *  out and retries. Throwing from step() would break the host's receive loop instead. */
  private withDroppedProposalsReported(_message: Message, handle: () => void): void {
    try {
      handle();
    } catch (error) {
      // Local is what the host proposed through propose(), not what merely carries our id: a
      // proposal we forwarded can bounce back to us (we forwarded to B while B still thought we
      // lead) and must be dropped silently too. (Found by the simulator, seeds 21139, 21571.)
      if (error instanceof ProposalDroppedError && !this.steppingLocalProposal) return;
      throw error;
    }
  }

  /** True only while the host's own propose()/proposeConfChange() is being stepped. */
  private steppingLocalProposal = false;

  /** Steps a proposal made by this node's host; a refusal is thrown to the caller. */
  stepLocalProposal(message: Message): void {
    this.steppingLocalProposal = true;
    try {
      this.step(message);
    } finally {
      this.steppingLocalProposal = false;
    }
  }

  private handleProposal(message: Message): void {
    assert(message.entries.length > 0, 'proposal without entries');
    if (!this.trk.progress.has(this.id)) throw new ProposalDroppedError('leader was removed from the configuration');
    if (this.leadTransferee !== NONE) {
      const carriesConfChange = message.entries.some((entry) => entry.type === 'confChange');
      if (carriesConfChange || this.heldProposals.length >= heldProposalsMax) throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
      this.heldProposals.push({ message, heldAtTick: this.ticks });
      return;
    }
    let lastConfIndex = 0;
    const firstIndex = this.raftLog.lastIndex() + 1;
    message.entries.forEach((entry, position) => {
      if (entry.type !== 'confChange') return;
      const refusal = this.confChangeRefusal(decodeConfChange(entry.data));
      if (refusal !== undefined) throw new ProposalDroppedError(refusal);
      assert(lastConfIndex === 0, 'at most one conf change per proposal');
      lastConfIndex = firstIndex + position;
    });
    if (!this.appendEntries(message.entries)) throw new ProposalDroppedError('too many uncommitted entry bytes');
    if (lastConfIndex !== 0) this.pendingConfIndex = lastConfIndex;
    // Messages only leave through the next Ready, so broadcasting then instead of now loses no
    // time and lets every proposal made before it share one append per follower.
    this.appendBroadcastPending = true;
  }

  /** Sends the appends deferred by proposals; RawNode calls it before building a Ready. */
  flushPendingAppends(): void {
    if (!this.appendBroadcastPending) return;
    this.appendBroadcastPending = false;
    if (this.role === 'leader') this.bcastAppend();
  }

  /** Why a conf change may not be appended now, or undefined if it may. */
  private confChangeRefusal(change: ConfChange): string | undefined {
    // One change at a time, and none before this leader committed an entry of its own term:
    // an earlier leader's uncommitted change could otherwise still win (the single-server
    // membership change bug, Ongaro 2015).
    if (this.pendingConfIndex > this.raftLog.applied) return 'a conf change is still pending (not yet applied)';
    if (!this.committedEntryInCurrentTerm()) return 'leader has not committed an entry of its term yet';
    const alreadyJoint = isJoint(this.trk.config);
    const wantsLeaveJoint = change.changes.length === 0;
    if (alreadyJoint && !wantsLeaveJoint) return 'must leave the joint configuration first';
    if (!alreadyJoint && wantsLeaveJoint) return 'not in a joint configuration; an empty change means nothing';
    return undefined;
  }

  private handleReadIndex(message: Message): void {
    if (this.trk.isSingleton()) {
      // Nobody else can have elected a newer leader: the commit index is safe right away.
      this.respondToReadIndex(message, this.raftLog.committed);
      return;
    }
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may lag the previous leader's until our own entry commits (§6.4).
      if (this.parkedReadIndexMessages.length < READ_INDEX_PARKED_COUNT_MAX) this.parkedReadIndexMessages.push(message);
      return;
    }
    this.startReadIndexRound(message);
  }

  private startReadIndexRound(message: Message): void {
    const context = message.context;
    if (context === undefined || context.byteLength === 0) return; // RawNode rejects these up front
    const token = this.readOnly.addRequest(this.raftLog.committed, message, this.term);
    if (token === undefined) return;
    this.readOnly.recvAck(this.id, token);
    this.bcastHeartbeat(token);
  }

  private respondToReadIndex(request: Message, index: LogIndex): void {
    const requestContext = request.context ?? EMPTY_BYTES;
    if (request.from === NONE || request.from === this.id) {
      this.readStates.push({ index, requestContext });
      return;
    }
    this.send({ type: 'readIndexResp', to: request.from, index, context: requestContext });
  }

  private releaseParkedReadIndexMessages(): void {
    if (this.parkedReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const parked = this.parkedReadIndexMessages;
    this.parkedReadIndexMessages = [];
    for (const message of parked) this.startReadIndexRound(message);
  }

  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.term(this.raftLog.committed) === this.term;
  }

  private handleAppendResponse(message: Message, progress: Progress): void {
    progress.recentActive = true;
    if (message.reject) {
      let nextProbeIndex = message.rejectHint;
      if ((message.rejectLogTerm ?? 0) > 0) {
        // Skip the follower's whole divergent term in one step.
        nextProbeIndex = this.raftLog.findConflictByTerm(message.rejectHint, message.rejectLogTerm!).index;
      }
      if (progress.maybeDecrTo(message.index, nextProbeIndex)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(message.from);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(message.index) && !(progress.match === message.index && progress.state === 'probe')) return;
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'snapshot' && progress.match + 1 >= this.raftLog.firstIndex()) {
      // The follower caught up past our compaction point (by the snapshot or otherwise).
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeLE(message.index);
    }
    if (this.maybeCommit()) {
      this.releaseParkedReadIndexMessages();
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(message.from);
    }
    // Fill the pipeline; bounded by inflights and by the log's end.
    while (this.maybeSendAppend(message.from, false)) {
      // keep sending
    }
    if (message.from === this.leadTransferee && progress.match === this.raftLog.lastIndex()) {
      this.send({ type: 'timeoutNow', to: message.from });
    }
  }

  private handleHeartbeatResponse(message: Message, progress: Progress): void {
    progress.recentActive = true;
    progress.msgAppFlowPaused = false;
    if (progress.match < this.raftLog.lastIndex() || progress.state === 'probe') this.sendAppend(message.from);
    if (message.context === undefined || message.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(message.from, message.context);
    if (acks === undefined || this.trk.quorumResult(acks) !== 'won') return;
    for (const status of this.readOnly.advance(message.context)) this.respondToReadIndex(status.request, status.index);
  }

  private handleTransferLeader(message: Message, progress: Progress): void {
    if (progress.isLearner) return; // a learner cannot lead
    const transferee = message.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // already under way
      this.leadTransferee = NONE;
    }
    if (transferee === this.id) {
      this.appendHeldProposals(); // a transfer to the leader itself cancels the one under way
      return;
    }
    // The transfer must finish within one election timeout (see tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (progress.match === this.raftLog.lastIndex()) this.send({ type: 'timeoutNow', to: transferee });
    else this.sendAppend(transferee);
  }

  /** Commits what a quorum has, subject to the current-term rule; true if commit advanced. */
  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  /** Appends locally as leader. Returns false if backpressure refused the entries. */
  private appendEntries(entries: readonly { readonly type: EntryType; readonly data: Uint8Array }[]): boolean {
    const bytes = payloadsBytes(entries as readonly Entry[]);
    const limit = this.config.maxUncommittedEntriesSizeBytes;
    // Always admit when nothing is uncommitted, so a single oversized entry cannot wedge us.
    if (limit > 0 && this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > limit) return false;
    this.uncommittedBytes += bytes;
    let index = this.raftLog.lastIndex();
    const stamped: Entry[] = entries.map((entry) => ({ term: this.term, index: ++index, type: entry.type, data: entry.data }));
    const lastIndex = this.raftLog.append(stamped);
    // The leader counts its own entries as matched now; the host persists them before it
    // sends anything that tells others they are committed (same Ready).
    this.trk.progress.get(this.id)!.maybeUpdate(lastIndex);
    this.maybeCommit();
    return true;
  }

  // ---- candidate and follower ----------------------------------------------------------

  private stepCandidate(message: Message): void {
    const myVoteResponse = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (message.type) {
      case 'prop':
        if (this.holdForwarded(message)) return;
        this.withDroppedProposalsReported(message, () => {
          throw new ProposalDroppedError('no leader (election in progress)');
        });
        return;
      case 'app':
        this.becomeFollower(message.term, message.from);
        this.handleAppendEntries(message);
        return;
      case 'heartbeat':
        this.becomeFollower(message.term, message.from);
        this.handleHeartbeat(message);
        return;
      case 'snap':
        this.becomeFollower(message.term, message.from);
        this.handleSnapshot(message);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        if (message.type !== myVoteResponse) return;
        this.trk.recordVote(message.from, !message.reject);
        const result = this.trk.tallyVotes();
        if (result === 'won') {
          if (this.role === 'preCandidate') {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          // A rejection carries a term no newer than ours here (newer terms were handled in
          // step()), so we stay in this term as a follower.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return; // timeoutNow and others mean nothing to a candidate
    }
  }

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'prop':
        if (this.leaderId === NONE && this.holdForwarded(message)) return;
        this.withDroppedProposalsReported(message, () => {
          if (this.leaderId === NONE) throw new ProposalDroppedError('no leader');
          if (this.config.disableProposalForwarding) throw new ProposalDroppedError('not the leader and forwarding is disabled');
          this.msgs.push({ ...message, to: this.leaderId });
        });
        return;
      case 'app':
        this.electionElapsed = 0;
        this.leaderId = message.from;
        this.forwardHeldProposals();
        this.handleAppendEntries(message);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leaderId = message.from;
        this.forwardHeldProposals();
        this.handleHeartbeat(message);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.leaderId = message.from;
        this.forwardHeldProposals();
        this.handleSnapshot(message);
        return;
      case 'transferLeader':
        if (this.leaderId !== NONE) this.msgs.push({ ...message, to: this.leaderId });
        return;
      case 'timeoutNow':
        // The leader asks us to campaign now, skipping PreVote: it is handing over.
        this.hup('transfer');
        return;
      case 'readIndex':
        // Without a known leader the request is dropped; the host's read times out and retries.
        if (this.leaderId !== NONE) this.msgs.push({ ...message, to: this.leaderId });
        return;
      case 'readIndexResp':
        this.readStates.push({ index: message.index, requestContext: message.context ?? EMPTY_BYTES });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(message: Message): void {
    if (message.index < this.raftLog.committed) {
      // Entirely behind our commit point: acknowledge what we have committed.
      this.send({ type: 'appResp', to: message.from, index: this.raftLog.committed });
      return;
    }
    const lastNewIndex = this.raftLog.maybeAppend(message.index, message.logTerm, message.commit, message.entries);
    if (lastNewIndex !== undefined) {
      this.send({ type: 'appResp', to: message.from, index: lastNewIndex });
      return;
    }
    // Mismatch: hint the largest index that could match, with its term, so the leader can
    // skip whole terms instead of decrementing one entry per round trip.
    const hint = this.raftLog.findConflictByTerm(Math.min(message.index, this.raftLog.lastIndex()), message.logTerm);
    this.send({
      type: 'appResp',
      to: message.from,
      index: message.index,
      reject: true,
      rejectHint: hint.index,
      rejectLogTerm: hint.term,
    });
  }

  private handleHeartbeat(message: Message): void {
    this.raftLog.commitTo(message.commit);
    this.send(
      message.context === undefined
        ? { type: 'heartbeatResp', to: message.from }
        : { type: 'heartbeatResp', to: message.from, context: message.context },
    );
  }

  private handleSnapshot(message: Message): void {
    const snapshot = message.snapshot;
    if (snapshot === undefined) return;
    if (this.restore(snapshot)) {
      this.send({ type: 'appResp', to: message.from, index: this.raftLog.lastIndex() });
    } else {
      this.send({ type: 'appResp', to: message.from, index: this.raftLog.committed });
    }
  }

  /** Installs a snapshot from the leader. Returns false if it was ignored (old, or our log
   *  already contains its last entry, in which case we just fast-forward the commit). */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.raftLog.committed) return false;
    if (this.role !== 'follower') {
      // Only a leader of our term sends snapshots and we follow it; anything else is a bug
      // upstream. Be defensive: become a follower in a newer term and ignore the snapshot.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const members = [...confState.voters, ...confState.learners, ...confState.votersOutgoing];
    // A snapshot of a config without us is ignored (we were removed, or it is stale), except
    // by a node that knows no config at all yet: a joiner learns the membership this way and
    // learns that it was added from the entries after the snapshot.
    if (!members.includes(this.id) && this.trk.progress.size > 0) return false;
    if (this.raftLog.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry (same index and term), so everything
      // before it matches too: keep the log, just commit.
      this.raftLog.commitTo(index);
      return false;
    }
    // Committed entries may still be on their way through the host (handed out in a Ready, not
    // yet advanced). Replacing the log now would switch the configuration under them: a conf
    // change entry the host applies next would run against the snapshot's config. Refuse until
    // the host caught up; the leader retries the snapshot. (Found by the simulator, seed 10275.)
    if (this.raftLog.applied < this.raftLog.committed) return false;
    // Our log conflicts at (or ends before) the snapshot's index: replace it entirely.
    this.raftLog.restore(snapshot);
    this.trk = new ProgressTracker(this.trk.inflightCountMax, this.trk.inflightBytesMax);
    this.switchToConfig(restoreConfState(this.changerInput(), confState));
    return true;
  }

  // ---- membership ----------------------------------------------------------------------

  private changerInput(): Parameters<typeof applyConfChangeTo>[0] {
    return {
      config: this.trk.config,
      progress: this.trk.progress,
      inflightCountMax: this.trk.inflightCountMax,
      inflightBytesMax: this.trk.inflightBytesMax,
      lastIndex: this.raftLog.lastIndex(),
    };
  }

  applyConfChange(change: ConfChange): ConfState {
    return this.switchToConfig(applyConfChangeTo(this.changerInput(), change));
  }

  private switchToConfig(result: ChangerResult): ConfState {
    this.trk.setConfig(result.config, result.progress);
    const confState = this.trk.confState();
    const self = this.trk.progress.get(this.id);
    this.isLearner = self !== undefined && self.isLearner;
    if ((self === undefined || this.isLearner) && this.role === 'leader') {
      // Removed or demoted: step down so that the remaining voters elect a leader promptly.
      this.becomeFollower(this.term, NONE);
      return confState;
    }
    if (this.role !== 'leader' || confState.voters.length === 0) return confState;
    // The quorum changed: the commit index may move, and new members need appends.
    if (this.maybeCommit()) {
      this.releaseParkedReadIndexMessages();
      this.bcastAppend();
    } else {
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) {
      this.leadTransferee = NONE;
      this.appendHeldProposals();
    }
    return confState;
  }

  // ---- called by RawNode.advance -------------------------------------------------------

  /** The host applied entries up to `index` (`appliedBytes` of payload). */
  appliedTo(index: LogIndex, appliedBytes: number): void {
    const previous = this.raftLog.applied;
    this.raftLog.appliedTo(Math.max(index, previous));
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - appliedBytes);
    if (this.trk.config.autoLeave && this.raftLog.applied >= this.pendingConfIndex && this.role === 'leader') {
      // The joint config is committed and applied: propose leaving it. If refused (e.g. our
      // own term's entry is not committed yet), the next applied batch retries.
      const leave: ConfChange = { changes: [], transition: 'auto' };
      try {
        this.handleProposal(
          buildMessage({ type: 'prop', to: this.id, entries: [confChangeEntry(leave)] }, this.id, 0),
        );
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
    }
  }
}

function confChangeEntry(change: ConfChange): Entry {
  return { term: 0, index: 0, type: 'confChange', data: encodeConfChange(change) };
}
