// One simulated node process: the raft core, its "disk" (a MemoryStorage that only ever holds
// what this host persisted from a Ready), the key-value state machine, and the server side of
// client requests. A crash throws away everything but the disk.

import {
  NONE,
  ProposalDroppedError,
  type ConfChange,
  type ConfState,
  type Entry,
  type LogIndex,
  type Message,
  type NodeId,
  type RaftConfig,
  type Ready,
  type StateRole,
  type Term,
} from '../../src/raft/types.js';
import type { KvOutput, KvValue } from '../../src/testing/linearizability/index.js';
import { decodeConfChange, defaultRaftConfig, MemoryStorage, RawNode } from './core.js';
import { SafetyViolation, type InvariantChecker } from './invariants.js';
import { decodeCommand, KvStateMachine, type KvCommand, encodeCommand } from './kv-state-machine.js';
import type { Network } from './network.js';
import type { Prng } from './prng.js';
import type { Trace } from './trace.js';

export interface HostContext {
  readonly network: Network;
  readonly invariants: InvariantChecker;
  readonly trace: Trace;
  /** Called after this host applied a conf change entry. */
  onConfChangeApplied(nodeId: NodeId, index: LogIndex, change: ConfChange, confState: ConfState): void;
  onSnapshotInstalled(nodeId: NodeId): void;
}

/** The core's knobs the simulator varies per seed: small bounds force paging and flow control. */
export type RaftTuning = Pick<
  RaftConfig,
  | 'electionTicks'
  | 'heartbeatTicks'
  | 'checkQuorum'
  | 'preVote'
  | 'maxSizePerMsgBytes'
  | 'maxInflightMsgs'
  | 'maxInflightBytes'
  | 'maxUncommittedEntriesSizeBytes'
  | 'maxCommittedSizePerReadyBytes'
>;

export interface HostTuning {
  readonly raft: RaftTuning;
  /** Chance, at each step, that a Ready taken from the core gets persisted (slow disks). */
  readonly persistProbability: number;
  readonly sabotage: HostSabotage;
  /** Chance that a follower forwards a client's write instead of redirecting the client. */
  readonly forwardProbability: number;
}

/**
 * Deliberate host bugs, to show that the simulator catches them (a checker that cannot fail
 * proves nothing). 'staleReads': serve reads from local state without ReadIndex.
 * 'sendBeforePersist': send a Ready's messages when it is taken, before it is persisted.
 */
export type HostSabotage = 'none' | 'staleReads' | 'sendBeforePersist';

export type SubmitOutcome =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'refused'; readonly reason: string; readonly leaderHint: NodeId };

type WriteReply = (output: KvOutput) => void;
type ReadReply = (value: KvValue) => void;

/** Requests a host remembers while waiting for their entry or read index; the oldest is
 *  forgotten beyond this (its client has long timed out). */
const pendingRequestsMax = 1_000;

/** Messages a paused host's socket buffers. */
const pausedInboxMessagesMax = 2_000;

/** Entries kept behind an on-demand snapshot. */
const snapshotKeepEntries = 10;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class SimHost {
  /** The disk: survives crashes. */
  readonly storage = new MemoryStorage();
  private core: RawNode | undefined;
  /** Increases on every start, so that late callbacks for a dead incarnation are ignored. */
  incarnation = 0;
  decommissioned = false;
  private stateMachine = new KvStateMachine();
  appliedIndex: LogIndex = 0;
  /** Membership as of `appliedIndex`: what a snapshot taken now must record. */
  confState: ConfState;
  role: StateRole = 'follower';
  leaderId: NodeId = NONE;
  private pendingReady: Ready | undefined;
  paused = false;
  private inboxWhilePaused: Message[] = [];
  private readonly pendingWrites = new Map<string, WriteReply>();
  private readonly pendingReads = new Map<string, { readonly key: string; readonly reply: ReadReply }>();
  /** ReadIndex results waiting for the state machine to catch up, in index order. */
  private readyReads: { readonly index: LogIndex; readonly contextKey: string }[] = [];
  private readonly random: Prng;

  constructor(
    readonly id: NodeId,
    private readonly context: HostContext,
    private readonly tuning: HostTuning,
    random: Prng,
    founding?: ConfState,
  ) {
    this.random = random;
    // The core's bootstrap records the founding membership as a snapshot (not an empty log plus
    // a ConfState), so nodes added later learn it from that snapshot.
    if (founding !== undefined) this.storage.bootstrap(founding);
    this.confState = this.storage.initialState().confState;
  }

  /** A Ready was taken from the core but is not on disk yet: the worst moment to crash. */
  get hasUnpersistedReady(): boolean {
    return this.pendingReady !== undefined;
  }

  get alive(): boolean {
    return this.core !== undefined;
  }

  /** Start (or restart) the process from what is on disk. */
  start(): void {
    if (this.core !== undefined) throw new Error(`${this.id} is already running`);
    const snapshot = this.storage.snapshot();
    this.stateMachine = KvStateMachine.restore(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    this.confState = snapshot.metadata.confState;
    const coreRandom = this.random.fork();
    const config = {
      ...defaultRaftConfig(this.id, this.storage, () => coreRandom.float()),
      ...this.tuning.raft,
      applied: this.appliedIndex,
    };
    this.core = new RawNode(config);
    this.incarnation++;
    this.role = 'follower';
    this.leaderId = NONE;
    const status = this.core.status();
    this.context.invariants.onRestart(this.id, status.hardState, this.appliedIndex);
    this.context.trace.log(`${this.id} started (incarnation ${this.incarnation}, term ${status.hardState.term}, commit ${status.hardState.commit}, applied ${this.appliedIndex})`);
  }

  /** Lose everything that is not on disk: the core, the unpersisted Ready, the state machine. */
  crash(): void {
    if (this.core === undefined) return;
    this.core = undefined;
    this.pendingReady = undefined;
    this.paused = false;
    this.inboxWhilePaused = [];
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.readyReads = [];
    this.role = 'follower';
    this.leaderId = NONE;
    this.context.invariants.onCrash(this.id);
  }

  tick(): void {
    if (this.paused) return;
    this.core?.tick();
  }

  receive(message: Message): void {
    if (this.core === undefined) return;
    if (this.paused) {
      // The socket buffers while the process is frozen; past its capacity, messages are lost.
      if (this.inboxWhilePaused.length < pausedInboxMessagesMax) this.inboxWhilePaused.push(message);
      return;
    }
    this.core.step(message);
  }

  /** Freeze the process (a long GC pause, a stopped VM): no ticks, no Ready handling, incoming
   *  messages wait. It wakes up believing whatever it believed, e.g. that it still leads. */
  pause(): void {
    if (this.core !== undefined) this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const inbox = this.inboxWhilePaused;
    this.inboxWhilePaused = [];
    for (const message of inbox) this.receive(message);
  }

  reportSnapshot(to: NodeId, delivered: boolean): void {
    this.core?.reportSnapshot(to, delivered);
  }

  reportUnreachable(to: NodeId): void {
    this.core?.reportUnreachable(to);
  }

  /** The running core, for the nemesis (transfers, conf changes, status). */
  get raft(): RawNode | undefined {
    return this.core;
  }

  get currentTerm(): Term {
    return this.core?.status().hardState.term ?? 0;
  }

  /** One step of the host loop: take a Ready, and persist/send/apply it, possibly a few steps
   *  later (a crash in between loses it). */
  processReady(): void {
    const core = this.core;
    if (core === undefined || this.paused) return;
    if (this.pendingReady === undefined) {
      if (!core.hasReady()) return;
      this.pendingReady = core.ready();
      this.observeSoftState(this.pendingReady);
      if (this.tuning.sabotage === 'sendBeforePersist') {
        for (const message of this.pendingReady.messages) this.context.network.send(message);
      }
    }
    if (!this.random.chance(this.tuning.persistProbability)) return;
    const ready = this.pendingReady;
    this.pendingReady = undefined;
    this.handleReady(core, ready);
  }

  private observeSoftState(ready: Ready): void {
    if (ready.softState === undefined) return;
    const { role, leaderId } = ready.softState;
    if (role !== this.role || leaderId !== this.leaderId) {
      const term = this.currentTerm;
      if (role === 'leader') this.context.invariants.onLeader(this.id, term);
      this.context.trace.log(`${this.id} is ${role} in term ${term} (leader ${leaderId || 'none'})`);
    }
    this.role = role;
    this.leaderId = leaderId;
  }

  private handleReady(core: RawNode, ready: Ready): void {
    // 1. Persist: snapshot, entries, hard state.
    if (ready.snapshot !== undefined) this.storage.applySnapshot(ready.snapshot);
    this.storage.append(ready.entries);
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
    this.context.invariants.onPersisted(this.id, ready, this.storage, this.role === 'leader' ? this.storage.initialState().hardState.term : undefined);
    if (ready.hardState !== undefined) this.context.invariants.onCommit(this.id, ready.hardState.commit);
    // 2. Only now send what depends on it.
    let snapshotPredatesPeer = false;
    for (const message of ready.messages) {
      if (this.tuning.sabotage !== 'sendBeforePersist') this.context.network.send(message);
      if (message.type === 'snap' && message.snapshot !== undefined && !isMember(message.snapshot.metadata.confState, message.to)) {
        snapshotPredatesPeer = true;
      }
    }
    // 3. Apply.
    if (ready.snapshot !== undefined) {
      const { index, term, confState } = ready.snapshot.metadata;
      this.stateMachine = KvStateMachine.restore(ready.snapshot.data);
      this.appliedIndex = index;
      this.confState = confState;
      this.context.invariants.onSnapshotRestored(this.id, index, term);
      this.context.onSnapshotInstalled(this.id);
      this.context.trace.log(`${this.id} installed snapshot at ${index} (term ${term})`);
    }
    for (const entry of ready.committedEntries) this.applyEntry(core, entry);
    for (const readState of ready.readStates) {
      this.readyReads.push({ index: readState.index, contextKey: textDecoder.decode(readState.requestContext) });
    }
    core.advance(ready);
    this.serveReads();
    // A peer added after our latest snapshot rejects it (it is not in its membership); take a
    // fresh one so that the next attempt can succeed, as etcd's server does.
    if (snapshotPredatesPeer) this.compact(snapshotKeepEntries);
  }

  private applyEntry(core: RawNode, entry: Entry): void {
    this.context.invariants.onApplied(this.id, entry, this.storage.initialState().hardState.term);
    this.appliedIndex = entry.index;
    if (entry.type === 'confChange') {
      const change = decodeConfChange(entry.data);
      try {
        this.confState = core.applyConfChange(change);
      } catch (error) {
        throw new SafetyViolation('conf change apply', `${this.id} failed to apply committed conf change at ${entry.index}: ${String(error)}`);
      }
      this.context.trace.log(`${this.id} applied conf change at ${entry.index}: ${describeConfState(this.confState)}`);
      this.context.onConfChangeApplied(this.id, entry.index, change, this.confState);
      return;
    }
    if (entry.data.length === 0) return; // a new leader's empty entry
    const command = decodeCommand(entry.data);
    const output = this.stateMachine.apply(command);
    if (output === undefined) return;
    const key = commandKey(command.clientId, command.seq);
    const reply = this.pendingWrites.get(key);
    if (reply !== undefined) {
      this.pendingWrites.delete(key);
      reply(output);
    }
  }

  private serveReads(): void {
    if (this.readyReads.length === 0) return;
    const stillWaiting: typeof this.readyReads = [];
    for (const read of this.readyReads) {
      if (read.index > this.appliedIndex) {
        stillWaiting.push(read);
        continue;
      }
      const pending = this.pendingReads.get(read.contextKey);
      if (pending === undefined) continue;
      this.pendingReads.delete(read.contextKey);
      pending.reply(this.stateMachine.read(pending.key));
    }
    this.readyReads = stillWaiting;
  }

  /** A client's write or CAS arrives. Only the leader proposes; others point to the leader. */
  submitWrite(command: KvCommand, reply: WriteReply): SubmitOutcome {
    const core = this.core;
    if (core === undefined) return { kind: 'refused', reason: 'down', leaderHint: NONE };
    // Sometimes a follower that knows the leader lets the core forward the proposal (a 'prop'
    // message, which the network may drop or duplicate) instead of redirecting the client.
    const forward = this.leaderId !== NONE && this.random.chance(this.tuning.forwardProbability);
    if (this.role !== 'leader' && !forward) return { kind: 'refused', reason: 'not leader', leaderHint: this.leaderId };
    try {
      core.propose(encodeCommand(command));
    } catch (error) {
      if (error instanceof ProposalDroppedError) return { kind: 'refused', reason: error.message, leaderHint: this.leaderId };
      throw error;
    }
    this.pendingWrites.set(commandKey(command.clientId, command.seq), reply);
    forgetOldest(this.pendingWrites);
    return { kind: 'accepted' };
  }

  /** A client's linearizable read arrives: ReadIndex, then serve once applied. */
  submitRead(requestId: string, key: string, reply: ReadReply): SubmitOutcome {
    const core = this.core;
    if (core === undefined) return { kind: 'refused', reason: 'down', leaderHint: NONE };
    // Without a known leader the core would drop the request silently; say so at once instead.
    if (this.leaderId === NONE) return { kind: 'refused', reason: 'no leader', leaderHint: NONE };
    if (this.tuning.sabotage === 'staleReads') {
      reply(this.stateMachine.read(key));
      return { kind: 'accepted' };
    }
    this.pendingReads.set(requestId, { key, reply });
    forgetOldest(this.pendingReads);
    core.readIndex(textEncoder.encode(requestId));
    return { kind: 'accepted' };
  }

  /** Snapshot the state machine at the applied index and drop old log entries from disk. */
  compact(keepEntries: number): boolean {
    if (this.core === undefined) return false;
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (this.appliedIndex <= snapshotIndex) return false;
    this.storage.createSnapshot(this.appliedIndex, this.confState, this.stateMachine.serialize());
    const compactTo = this.appliedIndex - keepEntries;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
    this.context.trace.log(`${this.id} snapshot at ${this.appliedIndex}, log now starts at ${this.storage.firstIndex()}`);
    return true;
  }
}

function isMember(confState: ConfState, id: NodeId): boolean {
  return confState.voters.includes(id) || confState.learners.includes(id) || confState.votersOutgoing.includes(id);
}

function forgetOldest<V>(pending: Map<string, V>): void {
  if (pending.size <= pendingRequestsMax) return;
  const oldest = pending.keys().next();
  if (oldest.done !== true) pending.delete(oldest.value);
}

function commandKey(clientId: number, seq: number): string {
  return `${clientId}:${seq}`;
}

export function describeConfState(confState: ConfState): string {
  const parts = [`voters [${confState.voters.join(',')}]`];
  if (confState.learners.length > 0) parts.push(`learners [${confState.learners.join(',')}]`);
  if (confState.votersOutgoing.length > 0) parts.push(`outgoing [${confState.votersOutgoing.join(',')}]`);
  if (confState.learnersNext.length > 0) parts.push(`learnersNext [${confState.learnersNext.join(',')}]`);
  if (confState.votersOutgoing.length > 0) parts.push(confState.autoLeave ? 'autoLeave' : 'explicit leave');
  return parts.join(' ');
}
