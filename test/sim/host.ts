// One simulated node: the production group host (src/group/RaftGroup, with its Ready loop,
// pending proposals, ReadIndex batching, snapshot policy and installation) over simulated
// parts: a disk that survives crashes (disk.ts) holding the Raft log (group-storage.ts), the
// key-value state machine (kv-replicated-machine.ts) and its snapshot files
// (snapshot-store.ts); a clock on the virtual scheduler (clock.ts); a transport on the simulated
// network (transport.ts). Each start is a new process: a new RaftGroup on what the disk holds.
// A crash drops the process and everything it had not made durable.
//
// The invariant checker learns what happened from the parts, not from the host's own account:
// the storage says what each write put on the platter and which hard states the core recorded,
// the state machine says what it applied, the group says who leads.

import { GroupUnavailableError, NotAppliedError } from '../../src/group/errors.js';
import { RaftGroup, type RaftGroupTuning } from '../../src/group/raft-group.js';
import type { Logger } from '../../src/observability/logger.js';
import type { RaftGroupMetrics } from '../../src/observability/metrics.js';
import { NONE, type ConfChange, type ConfState, type Entry, type LogIndex, type Message, type NodeId, type RaftConfig, type StateRole, type Status, type Term } from '../../src/raft/types.js';
import type { KvOutput, KvValue } from '../../src/testing/linearizability/index.js';
import { pino } from 'pino';
import { ProcessClock, ProcessGate } from './clock.js';
import { SimDisk, type DiskBehaviour } from './disk.js';
import { DurableLog, SimGroupStorage } from './group-storage.js';
import { SafetyViolation, type InvariantChecker } from './invariants.js';
import { appliedIndexOfTables, KvReplicatedMachine, type KvResult } from './kv-replicated-machine.js';
import { kvCommandCodec, type KvCommand } from './kv-state-machine.js';
import type { Network } from './network.js';
import type { Prng } from './prng.js';
import type { Scheduler, VirtualMs } from './scheduler.js';
import { SimSnapshotStore } from './snapshot-store.js';
import type { Trace } from './trace.js';
import { SimTransport, type Answer, type RequestTarget } from './transport.js';

export interface HostContext {
  readonly scheduler: Scheduler;
  readonly network: Network;
  readonly invariants: InvariantChecker;
  readonly trace: Trace;
  /** The host of a node, unless it was decommissioned. */
  hostOf(id: NodeId): SimHost | undefined;
  /** Called once this host's write applying a conf change entry is durable. */
  onConfChangeApplied(nodeId: NodeId, index: LogIndex, change: ConfChange, confState: ConfState): void;
  onSnapshotInstalled(nodeId: NodeId): void;
  onSnapshotTaken(nodeId: NodeId): void;
  /** The group stopped itself: a broken invariant of the host, or one the checker raised inside it. */
  onFatal(nodeId: NodeId, error: unknown, context: string): void;
  /** The group logged an error it carried on after (a failed snapshot): a bug here. */
  onErrorLogged(nodeId: NodeId, line: string): void;
}

/** The core's knobs the simulator varies per seed: small bounds force paging and flow control. */
export type RaftTuning = Pick<RaftConfig, 'electionTicks' | 'heartbeatTicks'> & RaftGroupTuning;

export interface HostTuning {
  readonly raft: RaftTuning;
  /** The slowest fsync of this run's disks: how long a write stays issued and not durable. */
  readonly syncDelayMsMax: VirtualMs;
  /** The group's snapshot policy. */
  readonly snapshotEveryEntries: number;
  readonly compactMarginEntries: number;
  /** How long the node lets a client's write or read wait for the group. */
  readonly requestTimeoutMs: VirtualMs;
  readonly sabotage: HostSabotage;
  /** Chance that a follower forwards a client's write instead of redirecting the client. */
  readonly forwardProbability: number;
}

/**
 * Deliberate bugs, to show that the simulator catches them (a checker that cannot fail proves
 * nothing), planted around the production host without changing it. 'staleReads': the node
 * serves reads from local state without ReadIndex. 'lyingDisk': the disk acknowledges writes
 * before they are durable, so the Ready loop sends votes and acknowledgements for state that a
 * crash then loses (a host that sends before persisting).
 */
export type HostSabotage = 'none' | 'staleReads' | 'lyingDisk';

/** A node's answer to a client's write. `refused`: this attempt certainly took no effect. */
export type WriteResponse =
  | { readonly kind: 'refused'; readonly reason: string; readonly leaderHint: NodeId }
  | { readonly kind: 'output'; readonly output: KvOutput }
  | { readonly kind: 'unknown'; readonly reason: string };

export type ReadResponse =
  | { readonly kind: 'value'; readonly value: KvValue }
  | { readonly kind: 'refused'; readonly reason: string; readonly leaderHint: NodeId };

/** Chance that a node without a known leader hands a request to its group anyway, which waits
 *  (bounded) for one, rather than refusing it at once. */
const waitForLeaderProbability = 0.5;
/** pino's numeric level of 'error'. */
const pinoErrorLevel = 50;
/** How long a lying disk's volatile cache holds an acknowledged write before the platter has it. */
const lyingWriteBackMsMin = 20;
const lyingWriteBackMsMax = 150;
/** Reading one entry back from the log: its size is irrelevant here. */
const entryBytesMax = Number.MAX_SAFE_INTEGER;

/** One process of a node: a RaftGroup and the parts only it holds (its memory, its view of
 *  the disk). */
interface Process {
  readonly gate: ProcessGate;
  readonly machine: KvReplicatedMachine;
  readonly group: RaftGroup<KvCommand, KvResult>;
}

export class SimHost implements RequestTarget {
  /** Survives crashes. */
  readonly disk = new SimDisk();
  /** The log as it is on the disk's platter, for the invariant checker. */
  readonly durableLog = new DurableLog(this.disk);
  private running: Process | undefined;
  /** Increases on every start, so that late callbacks for a dead incarnation are ignored. */
  incarnation = 0;
  decommissioned = false;
  private readonly behaviour: DiskBehaviour;

  constructor(
    readonly id: NodeId,
    private readonly context: HostContext,
    private readonly tuning: HostTuning,
    private readonly random: Prng,
    /** The founding voters, for a founding member; undefined for a node added later. */
    private readonly founders: readonly NodeId[] | undefined,
  ) {
    const diskRandom = random.fork();
    const lying = tuning.sabotage === 'lyingDisk';
    this.behaviour = {
      // A lying disk's cache writes back on its own schedule, long after it acknowledged.
      syncDelayMs: () => (lying ? diskRandom.between(lyingWriteBackMsMin, lyingWriteBackMsMax) : diskRandom.int(tuning.syncDelayMsMax + 1)),
      acknowledgesBeforeDurable: lying,
    };
  }

  get alive(): boolean {
    return this.running !== undefined;
  }

  get paused(): boolean {
    return this.running?.gate.isPaused ?? false;
  }

  /** Writes issued and not durable yet: the worst moment to crash. */
  get hasWritesInFlight(): boolean {
    return this.disk.unsyncedWriteCount > 0;
  }

  /** The running group, for the nemesis (transfers, conf changes, status). */
  get group(): RaftGroup<KvCommand, KvResult> | undefined {
    return this.running?.group;
  }

  status(): Status | undefined {
    return this.running?.group.status();
  }

  /** The core's role right now, for traces. */
  get role(): StateRole | 'down' {
    return this.status()?.softState.role ?? 'down';
  }

  get isLeader(): boolean {
    return this.running?.group.isLeader() ?? false;
  }

  get leaderId(): NodeId {
    return this.running?.group.leader() ?? NONE;
  }

  get currentTerm(): Term {
    return this.status()?.hardState.term ?? 0;
  }

  /** The last index applied by a durable write. */
  get appliedIndex(): LogIndex {
    return this.running?.machine.appliedIndex() ?? 0;
  }

  /** Start (or restart) the process from what is on disk. */
  start(): void {
    if (this.running !== undefined) throw new Error(`${this.id} is already running`);
    const { scheduler, invariants, trace } = this.context;
    const incarnation = ++this.incarnation;
    const gate = new ProcessGate(scheduler);
    const clock = new ProcessClock(scheduler, this.random.fork(), gate);
    const env = this.disk.open({ clock, scheduler, behaviour: this.behaviour });
    let constructing = true;
    const storage = new SimGroupStorage(env, {
      hardStateSet: (hardState) => invariants.onCommit(this.id, hardState.commit),
      persisted: (write) => invariants.onPersisted(this.id, write, this.durableLog),
    });
    // What the machine applies inside a write is reported to the checker once that write is
    // durable: a leader applies entries it counted as committed with its own append still in
    // flight, and that commit is real only once the append is durable (until then nobody
    // outside the process sees it: no answer, no commit index, no read).
    const applying: ({ readonly index: LogIndex; readonly entry: Entry; readonly term: Term } | { readonly index: LogIndex; readonly snapshotTerm: Term })[] = [];
    /** Conf change entries applied for good, waiting for the group to report them. */
    const confChangeIndexes: LogIndex[] = [];
    const machine = new KvReplicatedMachine(env, {
      applying: (index) => {
        // The group passes over the bootstrap snapshot's index while it starts.
        if (constructing) return;
        const [entry] = storage.entries(index, index + 1, entryBytesMax);
        if (entry === undefined) throw new SafetyViolation('applied entries exist', `${this.id} applied ${index}, which its log lacks`);
        applying.push({ index, entry, term: storage.currentHardState().term });
      },
      restoring: (index) => {
        const { term } = storage.snapshot().metadata;
        applying.push({ index, snapshotTerm: term });
        trace.log(`${this.id} installs snapshot at ${index} (term ${term})`);
      },
      applied: (results) => {
        if (constructing) return;
        for (const result of results) {
          const item = applying.shift();
          if (item?.index !== result.index) throw new SafetyViolation('applied in order', `${this.id} reported ${result.index} durable, applied ${item?.index ?? 'nothing'} next`);
          if ('snapshotTerm' in item) {
            invariants.onSnapshotRestored(this.id, item.index, item.snapshotTerm);
            continue;
          }
          invariants.onApplied(this.id, item.entry, item.term);
          if (item.entry.type === 'confChange') confChangeIndexes.push(item.index);
        }
      },
    });
    const transport = new SimTransport(this.id, this.context.network, (id) => this.context.hostOf(id), clock, gate, (message) =>
      invariants.onSent(this.id, message, this.durableLog),
    );
    let group: RaftGroup<KvCommand, KvResult> | undefined;
    const metrics: RaftGroupMetrics = {
      leaderChanged: () => {
        if (group !== undefined) this.observeLeader(group);
      },
      proposed: () => undefined,
      readyPersisted: () => undefined,
      committed: () => undefined,
      snapshot: (kind) => {
        if (kind === 'taken') this.context.onSnapshotTaken(this.id);
        if (kind === 'installed') this.context.onSnapshotInstalled(this.id);
      },
    };
    const { raft } = this.tuning;
    group = new RaftGroup<KvCommand, KvResult>({
      groupId: 'kv',
      nodeId: this.id,
      storage,
      machine,
      codec: kvCommandCodec,
      snapshots: new SimSnapshotStore(this.disk, env, appliedIndexOfTables),
      transport,
      clock,
      logger: this.logger(),
      metrics,
      initialVoters: this.founders ?? [],
      electionTicks: raft.electionTicks,
      heartbeatTicks: raft.heartbeatTicks,
      snapshotEveryEntries: this.tuning.snapshotEveryEntries,
      compactMarginEntries: this.tuning.compactMarginEntries,
      raft: {
        checkQuorum: raft.checkQuorum,
        preVote: raft.preVote,
        maxSizePerMsgBytes: raft.maxSizePerMsgBytes,
        maxInflightMsgs: raft.maxInflightMsgs,
        maxInflightBytes: raft.maxInflightBytes,
        maxUncommittedEntriesSizeBytes: raft.maxUncommittedEntriesSizeBytes,
        maxCommittedSizePerReadyBytes: raft.maxCommittedSizePerReadyBytes,
      },
      onMembershipChanged: (_groupId, change, confState) => {
        const index = confChangeIndexes.shift();
        if (index === undefined) throw new SafetyViolation('conf change apply', `${this.id} reported a membership change it never applied`);
        trace.log(`${this.id} applied conf change at ${index}: ${describeConfState(confState)}`);
        this.context.onConfChangeApplied(this.id, index, change, confState);
      },
      onFatal: (error, where) => this.context.onFatal(this.id, error, where),
    });
    constructing = false;
    this.running = { gate, machine, group };
    const status = group.status();
    invariants.onRestart(this.id, status.hardState, machine.lastAppliedIndex());
    trace.log(`${this.id} started (incarnation ${incarnation}, term ${status.hardState.term}, commit ${status.hardState.commit}, applied ${machine.lastAppliedIndex()})`);
  }

  /** The operator shuts the node down for good after its removal: a graceful stop (waiting
   *  requests are failed), then the process is gone. */
  decommission(): void {
    this.running?.group.stop();
    this.crash();
    this.decommissioned = true;
  }

  /** Lose the process: its memory, its timers, its writes not yet on the platter. */
  crash(): void {
    const running = this.running;
    if (running === undefined) return;
    running.gate.kill();
    this.disk.crash();
    this.running = undefined;
    this.context.invariants.onCrash(this.id);
  }

  tick(): void {
    const running = this.running;
    if (running === undefined || running.gate.isPaused) return;
    running.group.tick();
  }

  receive(message: Message): void {
    const running = this.running;
    running?.gate.receive(() => running.group.receive([message]));
  }

  reportUnreachable(to: NodeId): void {
    const running = this.running;
    running?.gate.run(() => running.group.reportUnreachable(to));
  }

  /** Freeze the process (a long GC pause, a stopped VM): no ticks, timers or input; it wakes
   *  up believing whatever it believed, e.g. that it still leads. */
  pause(): void {
    this.running?.gate.pause();
  }

  resume(): void {
    this.running?.gate.resume();
  }

  // ---------------------------------------------------------------- requests from peers

  serveReadIndex(deadlineMs: number, reply: (answer: Answer<LogIndex>) => void): void {
    const running = this.running;
    if (running === undefined || this.decommissioned) return;
    running.gate.receive(() => {
      running.group.readIndexHere(deadlineMs).then(
        (index) => running.gate.run(() => reply({ ok: true, value: index })),
        (error: unknown) => running.gate.run(() => reply({ ok: false, error: asError(error) })),
      );
    });
  }

  serveSnapshot(message: Message, data: Uint8Array, reply: (answer: Answer<void>) => void): void {
    const running = this.running;
    if (running === undefined || this.decommissioned) return;
    running.gate.receive(() => {
      running.group.receiveSnapshot(message, chunked(data)).then(
        () => running.gate.run(() => reply({ ok: true, value: undefined })),
        (error: unknown) => running.gate.run(() => reply({ ok: false, error: asError(error) })),
      );
    });
  }

  // ---------------------------------------------------------------- requests from clients

  /** A client's write or CAS arrives. Followers mostly point to the leader; some forward it
   *  (the group forwards it to the leader inside the Raft stream). */
  submitWrite(command: KvCommand, respond: (response: WriteResponse) => void): void {
    const running = this.running;
    if (running === undefined) return respond({ kind: 'refused', reason: 'down', leaderHint: NONE });
    running.gate.receive(() => this.serveWrite(running, command, respond));
  }

  /** A client's linearizable read arrives: ReadIndex through the group, then a local read. */
  submitRead(key: string, respond: (response: ReadResponse) => void): void {
    const running = this.running;
    if (running === undefined) return respond({ kind: 'refused', reason: 'down', leaderHint: NONE });
    running.gate.receive(() => this.serveRead(running, key, respond));
  }

  private serveWrite(running: Process, command: KvCommand, respond: (response: WriteResponse) => void): void {
    const { group, gate } = running;
    const leaderId = group.leader();
    if (leaderId === NONE && !this.random.chance(waitForLeaderProbability)) return respond({ kind: 'refused', reason: 'no leader', leaderHint: NONE });
    if (leaderId !== NONE && !group.isLeader() && !this.random.chance(this.tuning.forwardProbability)) {
      return respond({ kind: 'refused', reason: 'not leader', leaderHint: leaderId });
    }
    // An error while this turn's promise jobs run, before any other event, comes from before
    // the entry reached the core (no leader, too many waiting, dropped by the core): a refusal.
    // Any later one (a deadline, a leader change) leaves the outcome unknown.
    const { scheduler } = this.context;
    const turn = scheduler.eventsRun;
    group.propose(command, this.tuning.requestTimeoutMs).then(
      (committed) => {
        // A duplicate (an earlier attempt of the same command took effect) says nothing.
        const output = committed.result;
        if (output !== undefined) gate.run(() => respond({ kind: 'output', output }));
      },
      (error: unknown) => {
        // NotAppliedError says so itself, whenever it comes (after waiting for a leader, say).
        const refused = error instanceof NotAppliedError || (scheduler.eventsRun === turn && error instanceof GroupUnavailableError);
        gate.run(() =>
          respond(refused ? { kind: 'refused', reason: asError(error).message, leaderHint: group.leader() } : { kind: 'unknown', reason: asError(error).message }),
        );
      },
    );
  }

  private serveRead(running: Process, key: string, respond: (response: ReadResponse) => void): void {
    const { group, gate, machine } = running;
    if (this.tuning.sabotage === 'staleReads') return respond({ kind: 'value', value: machine.read(key) });
    if (group.leader() === NONE && !this.random.chance(waitForLeaderProbability)) return respond({ kind: 'refused', reason: 'no leader', leaderHint: NONE });
    group.readIndex(this.tuning.requestTimeoutMs).then(
      () => gate.run(() => respond({ kind: 'value', value: machine.read(key) })),
      (error: unknown) => gate.run(() => respond({ kind: 'refused', reason: asError(error).message, leaderHint: group.leader() })),
    );
  }

  /** The group's warnings and errors go to the trace (without wall-clock times, so a replay
   *  prints the same); errors are reported, since nothing in the simulation should cause one. */
  private logger(): Logger {
    const { trace } = this.context;
    return pino(
      { level: 'warn', base: undefined, timestamp: false },
      {
        write: (line: string) => {
          const { level, msg, err, ...fields } = JSON.parse(line) as { level: number; msg: string; err?: { message: string } };
          const text = `${msg}${err === undefined ? '' : `: ${err.message}`} ${JSON.stringify(fields)}`;
          trace.log(`${this.id} logged ${text}`);
          if (level >= pinoErrorLevel) this.context.onErrorLogged(this.id, line.trim());
        },
      },
    );
  }

  private observeLeader(group: RaftGroup<KvCommand, KvResult>): void {
    const status = group.status();
    const { role, leaderId } = status.softState;
    const term = status.hardState.term;
    if (role === 'leader') this.context.invariants.onLeader(this.id, term);
    this.context.trace.log(`${this.id} is ${role} in term ${term} (leader ${leaderId || 'none'})`);
  }
}

async function* chunked(data: Uint8Array): AsyncIterable<Uint8Array> {
  if (data.byteLength > 0) yield data;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function describeConfState(confState: ConfState): string {
  const parts = [`voters [${confState.voters.join(',')}]`];
  if (confState.learners.length > 0) parts.push(`learners [${confState.learners.join(',')}]`);
  if (confState.votersOutgoing.length > 0) parts.push(`outgoing [${confState.votersOutgoing.join(',')}]`);
  if (confState.learnersNext.length > 0) parts.push(`learnersNext [${confState.learnersNext.join(',')}]`);
  if (confState.votersOutgoing.length > 0) parts.push(confState.autoLeave ? 'autoLeave' : 'explicit leave');
  return parts.join(' ');
}
