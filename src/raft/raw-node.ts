// RawNode: the host-facing API around the Raft state machine (etcd-io/raft's rawnode.go).
//
// The Ready contract. The host loops:
//   if (node.hasReady()) {
//     const rd = node.ready();
//     1. persist rd.snapshot (if any), then rd.entries (appending; they may replace a suffix of
//        the log), then rd.hardState (if any) — durably (fsync) when rd.mustSync is true;
//     2. only then send rd.messages. A vote or an append acknowledgement that leaves before the
//        state it vouches for is on disk can, after a crash, elect two leaders in one term or
//        lose a committed entry. (A vote response always travels in the same Ready as the
//        hardState that records the vote; an acknowledgement in the same Ready as its entries.)
//     3. apply rd.committedEntries in order (they may include entries of rd.entries, which are
//        on disk by now); call applyConfChange() for each 'confChange' entry;
//     4. call node.advance(rd).
//   }
// Serve each rd.readStates entry once the applied index reaches its index.
// After sending a 'snap' message, report the outcome with reportSnapshot(to, ok): the leader
// sends that follower nothing else until then. Report peers the transport cannot reach with
// reportUnreachable(id).
// On restart, config.applied must agree with storage.initialState().confState: conf changes
// after the snapshot are not in the ConfState, so a host whose applied index is past the
// snapshot must have persisted the resulting membership, or restart with applied = the
// snapshot index and re-apply the entries (conf changes included) that follow it.
// At most one Ready is outstanding: ready() may not be called again before advance(), and
// hasReady() answers false in between. Other calls (step, tick, propose) are allowed between.
//
// Initial membership comes from Storage.initialState().confState. A founding member of a new
// group starts from a storage bootstrapped with the founding ConfState
// (MemoryStorage.bootstrap(confStateOf([...])): a snapshot at index 1 holding the membership).
// A node that joins later starts with an empty storage (empty ConfState, so it never
// campaigns); the leader adds it with a conf change and sends it the snapshot, from which it
// learns the membership, then replays the log after it.
import { encodeConfChange } from './codec.js';
import { isLocalMessage, isResponseMessage, buildMessage, type MessageInit } from './messages.js';
import { Raft } from './raft.js';
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ProgressStatus,
  type RaftConfig,
  type RawNodeApi,
  type Ready,
  type SoftState,
  type Status,
} from './types.js';
import { assert, payloadsBytes } from './util.js';

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role;
}

export class LocalMessageError extends Error {
  constructor(type: string) {
    super(`cannot step a local message type from the network: ${type}`);
  }
}

export class RawNode implements RawNodeApi {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private readyOutstanding = false;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advances logical time by one tick (the host calls it on a fixed interval). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (PreVote first when enabled). */
  campaign(): void {
    this.raft.step(this.localMessage({ type: 'hup', to: this.raft.id }));
  }

  /** Proposes a normal entry. Throws ProposalDroppedError if it cannot be accepted now. */
  propose(data: Uint8Array): void {
    const entry: Entry = { term: 0, index: 0, type: 'normal', data };
    this.raft.stepLocalProposal(this.localMessage({ type: 'prop', to: this.raft.id, entries: [entry] }));
  }

  /** Proposes a membership change. Throws ProposalDroppedError if refused (another change is
   *  pending, the leader has not committed an entry of its term, joint rules). */
  proposeConfChange(change: ConfChange): void {
    const entry: Entry = { term: 0, index: 0, type: 'confChange', data: encodeConfChange(change) };
    this.raft.stepLocalProposal(this.localMessage({ type: 'prop', to: this.raft.id, entries: [entry] }));
  }

  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  /** Feeds a message from a peer. Responses from nodes outside the configuration are dropped. */
  step(message: Message): void {
    if (isLocalMessage(message.type)) throw new LocalMessageError(message.type);
    if (isResponseMessage(message.type) && !this.raft.trk.progress.has(message.from)) return;
    this.raft.step(message);
  }

  /** Requests a linearizable read point; the answer appears as a ReadState carrying
   *  `context`, which must be non-empty and unique among outstanding reads. */
  readIndex(context: Uint8Array): void {
    assert(context.byteLength > 0, 'readIndex needs a non-empty, unique context');
    this.raft.step(this.localMessage({ type: 'readIndex', to: this.raft.id, context }));
  }

  transferLeadership(to: NodeId): void {
    // As in etcd, the transferee travels in `from`.
    this.raft.step(buildMessage({ type: 'transferLeader', to: this.raft.id }, to, 0));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(buildMessage({ type: 'unreachable', to: this.raft.id }, id, 0));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(buildMessage({ type: 'snapStatus', to: this.raft.id, reject: !ok }, id, 0));
  }

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    const raft = this.raft;
    raft.flushPendingAppends();
    return (
      !sameSoftState(raft.softState(), this.prevSoftState) ||
      !sameHardState(raft.hardState(), this.prevHardState) ||
      raft.raftLog.hasPendingSnapshot() ||
      raft.msgs.length > 0 ||
      raft.raftLog.unstable.entries.length > 0 ||
      raft.raftLog.hasNextCommittedEntries() ||
      raft.readStates.length > 0
    );
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'ready() called again before advance()');
    const raft = this.raft;
    raft.flushPendingAppends();
    const entries = raft.raftLog.unstableEntries();
    const hardState = raft.hardState();
    const softState = raft.softState();
    const snapshot = raft.raftLog.unstable.snapshot;
    const hardStateChanged = !sameHardState(hardState, this.prevHardState);
    const ready: { -readonly [K in keyof Ready]: Ready[K] } = {
      readStates: raft.readStates,
      entries,
      committedEntries: raft.raftLog.nextCommittedEntries(),
      messages: raft.msgs,
      // Term and vote must survive a crash (one vote per term); so must acknowledged entries.
      // A commit-only change may be written lazily: it can be recomputed from a quorum.
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hardState.term !== this.prevHardState.term ||
        hardState.vote !== this.prevHardState.vote,
    };
    if (!sameSoftState(softState, this.prevSoftState)) ready.softState = softState;
    if (hardStateChanged) ready.hardState = hardState;
    if (snapshot !== undefined) ready.snapshot = snapshot;
    raft.msgs = [];
    raft.readStates = [];
    this.prevSoftState = softState;
    this.readyOutstanding = true;
    return ready;
  }

  /** The host finished steps 1-3 for `ready`. */
  advance(ready: Ready): void {
    assert(this.readyOutstanding, 'advance() without an outstanding ready()');
    this.readyOutstanding = false;
    if (ready.hardState !== undefined) this.prevHardState = ready.hardState;
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    const appliedIndex = lastCommitted?.index ?? ready.snapshot?.metadata.index ?? 0;
    if (appliedIndex > 0) this.raft.appliedTo(appliedIndex, payloadsBytes(ready.committedEntries));
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.raft.raftLog.stableTo(lastEntry.index, lastEntry.term);
    if (ready.snapshot !== undefined) this.raft.raftLog.stableSnapshotTo(ready.snapshot.metadata.index);
  }

  status(): Status {
    const raft = this.raft;
    const base = {
      id: raft.id,
      hardState: raft.hardState(),
      softState: raft.softState(),
      applied: raft.raftLog.applied,
      leadTransferee: raft.leadTransferee,
      confState: raft.trk.confState(),
    };
    if (raft.role !== 'leader') return base;
    const progress = new Map<NodeId, ProgressStatus>();
    raft.trk.visit((id, pr) => {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        pendingSnapshot: pr.pendingSnapshot,
        recentActive: pr.recentActive,
        isLearner: pr.isLearner,
      });
    });
    return { ...base, progress };
  }

  private localMessage(init: MessageInit): Message {
    return buildMessage(init, this.raft.id, 0);
  }
}
