// The vocabulary of the consensus core. Everything in src/raft/ speaks these types;
// nothing here touches the clock, the disk or the network.
//
// This file is the contract between the core (src/raft/), the deterministic simulator
// (test/sim/) and, later, the cluster host (src/cluster/). Fields may be added; renaming
// or removing one is a change to all three.

import type { LogIndex, NodeId, Term } from '../model/ids.js';

// Declared in src/model/ (shared with the rest of the project); re-exported so the core's own
// modules and its callers keep one import for the whole vocabulary.
export type { LogIndex, NodeId, Term } from '../model/ids.js';

/** The "no node" value for `vote` and `leaderId`. */
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly type: EntryType;
  /** Opaque to the core for 'normal' entries; an encoded ConfChange for 'confChange'. An empty
   *  normal entry is what a new leader appends to commit an entry of its own term. */
  readonly data: Uint8Array;
}

/** What must be on disk before any message that depends on it is sent. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId; // NONE when not voted in `term`
  readonly commit: LogIndex;
}

/** Group membership. In a joint configuration, `votersOutgoing` is non-empty. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Voters of the outgoing configuration while in a joint configuration; empty otherwise. */
  readonly votersOutgoing: readonly NodeId[];
  /** Voters of the outgoing config that become learners once the joint config is left. */
  readonly learnersNext: readonly NodeId[];
  /** Leave the joint configuration automatically once it is committed. */
  readonly autoLeave: boolean;
}

export interface SnapshotMetadata {
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The state machine's serialized state at `metadata.index`; opaque to the core. */
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'addLearner' | 'removeNode';

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * A membership change. One single change is applied directly ("simple" change); several, or
 * `transition: 'joint'`, go through a joint configuration (Raft dissertation §4.3).
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeSingle[];
  /** 'auto': simple if possible, else joint with auto leave; 'joint': always joint, left explicitly
   *  by proposing an empty ConfChange; 'jointAutoLeave': joint, left automatically. */
  readonly transition: 'auto' | 'joint' | 'jointAutoLeave';
  readonly context?: Uint8Array;
}

export type MessageType =
  | 'hup' // local: start an election
  | 'beat' // local: leader sends heartbeats
  | 'prop' // proposal (local, or forwarded from a follower)
  | 'app' // AppendEntries
  | 'appResp'
  | 'vote' // RequestVote
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'snap' // InstallSnapshot
  | 'heartbeat'
  | 'heartbeatResp'
  | 'unreachable' // local: transport reports a peer unreachable
  | 'snapStatus' // local: transport reports the outcome of sending a snapshot
  | 'checkQuorum' // local: leader checks it heard from a quorum
  | 'transferLeader'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  /** For 'app': term of the entry at `index` (the entry preceding `entries`).
   *  For 'vote'/'preVote': term of the candidate's last entry. */
  readonly logTerm: Term;
  readonly index: LogIndex;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  /** On a rejected append: the follower's hint of where to probe next. */
  readonly rejectHint: LogIndex;
  /** For 'appResp' rejections: term of the follower's entry at `rejectHint`. */
  readonly rejectLogTerm?: Term;
  /** ReadIndex request context, echoed in the response and in the ReadState. Also carries the
   *  campaign kind for forced (leader transfer) elections. */
  readonly context?: Uint8Array;
}

export type StateRole = 'follower' | 'candidate' | 'preCandidate' | 'leader';

/** Volatile state, reported when it changes; never persisted. */
export interface SoftState {
  readonly leaderId: NodeId; // NONE if unknown
  readonly role: StateRole;
}

/** A read request that may be served once the state machine applied up to `index`. */
export interface ReadState {
  readonly index: LogIndex;
  readonly requestContext: Uint8Array;
}

/**
 * What the core asks of its host, in this order:
 *  1. persist `snapshot` (if any), `entries` and `hardState` (if any) — durably (fsync) when
 *     `mustSync` is true;
 *  2. only then send `messages` (a vote or an append acknowledgement sent before the state it
 *     vouches for is on disk can elect two leaders or lose a committed entry after a crash);
 *  3. apply `committedEntries` to the state machine, in order;
 *  4. call `advance(ready)`.
 * Serve `readStates` once the applied index reaches each one's `index`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly readStates: readonly ReadState[];
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly mustSync: boolean;
}

/** The persisted log as the core sees it. The host appends entries from each Ready. */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most `maxBytes` of data (but always at least one if lo < hi).
   *  Throws CompactedError if lo <= the compacted index, UnavailableError if hi > lastIndex()+1. */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[];
  /** Term of the entry at `index`; valid for firstIndex()-1 ..= lastIndex(). */
  term(index: LogIndex): Term;
  /** Index of the first entry still in the log (compacted index + 1). */
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** The most recent snapshot. Throws SnapshotTemporarilyUnavailableError if not ready yet. */
  snapshot(): Snapshot;
}

export class CompactedError extends Error {
  constructor(index: LogIndex) {
    super(`requested index ${index} is unavailable due to compaction`);
  }
}
export class UnavailableError extends Error {
  constructor(index: LogIndex) {
    super(`requested entry at index ${index} is unavailable`);
  }
}
export class SnapshotTemporarilyUnavailableError extends Error {
  constructor() {
    super('snapshot is temporarily unavailable');
  }
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in
   *  [electionTicks, 2*electionTicks). Must be > heartbeatTicks. */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly storage: Storage;
  /** Last applied index at start (the host's state machine knows it). */
  readonly applied: LogIndex;
  /** Upper bound on the data bytes of entries in one append message. */
  readonly maxSizePerMsgBytes: number;
  /** Upper bound on in-flight append messages per follower in replicate state. */
  readonly maxInflightMsgs: number;
  /** Upper bound on in-flight entry bytes per follower (0: no byte limit beyond maxInflightMsgs). */
  readonly maxInflightBytes: number;
  /** Proposals are dropped once uncommitted entry bytes exceed this (0: unbounded). */
  readonly maxUncommittedEntriesSizeBytes: number;
  /** Upper bound on the bytes of committed entries handed out in one Ready. */
  readonly maxCommittedSizePerReadyBytes: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  /** Source of randomness for election timeouts: returns a float in [0, 1). Injected so that the
   *  core stays deterministic under a seeded simulator. */
  readonly random: () => number;
  /** Drop proposals when the leader is unknown or this node is not the leader, instead of
   *  forwarding them (the host forwards proposals itself). */
  readonly disableProposalForwarding: boolean;
}

/** Why a proposal was not accepted. Thrown by propose()/proposeConfChange(). */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`proposal dropped: ${reason}`);
  }
}

export interface ProgressStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly pendingSnapshot: LogIndex;
  readonly recentActive: boolean;
  readonly isLearner: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: LogIndex;
  readonly leadTransferee: NodeId;
  readonly confState: ConfState;
  /** Only on the leader: what it knows of every member. */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
}

/**
 * The node's API, modeled on etcd-io/raft's RawNode. Synchronous: every call returns after it
 * changed in-memory state; its effects surface in the next Ready.
 */
export interface RawNodeApi {
  tick(): void;
  campaign(): void;
  propose(data: Uint8Array): void;
  proposeConfChange(change: ConfChange): void;
  /** Apply a committed conf change entry; returns the resulting configuration. */
  applyConfChange(change: ConfChange): ConfState;
  step(message: Message): void;
  readIndex(context: Uint8Array): void;
  transferLeadership(to: NodeId): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(ready: Ready): void;
  status(): Status;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
}
