// One seeded run: build a cluster of production group hosts, let clients and the nemesis loose
// for a while, calm down, then judge. Every random choice comes from the seed, so a failing seed
// replays exactly.
//
// Virtual time advances one millisecond per step. Within a step, due events run one by one, and
// after each the promise jobs it started run to completion (one turn of an event loop): the host
// is asynchronous code, and this is the order in which Node would run it.

import { NONE, type ConfChange, type ConfState, type LogIndex, type NodeId, type Storage } from '../../src/raft/types.js';
import { checkKv } from '../../src/testing/linearizability/index.js';
import { SimHost, type HostContext, type HostSabotage, type HostTuning, type RaftTuning } from './host.js';
import { InvariantChecker, SafetyViolation } from './invariants.js';
import { Network, quietNetwork, type NetworkFaults } from './network.js';
import { allFaults, Nemesis, type NemesisFeatures } from './nemesis.js';
import { Figure8Nemesis, figure8VoterCount } from './figure8.js';
import { Prng } from './prng.js';
import { Scheduler, type VirtualMs } from './scheduler.js';
import { snapshotFileOf } from './snapshot-store.js';
import { Trace } from './trace.js';
import { Workload, type WorkloadOptions } from './clients.js';

/** 'mixed': every kind of fault at random. 'figure8': a 5-node cluster driven through the Raft
 *  paper's Figure 8 again and again (see figure8.ts), plus compaction and message faults. */
export type FaultProfile = 'mixed' | 'figure8';

/** Every this many seeds, one runs the figure8 profile, so any run of consecutive seeds (the
 *  regression seeds, a soak) contains that share of it. */
const figure8SeedEvery = 4;

export function faultProfileOf(seed: number): FaultProfile {
  return seed % figure8SeedEvery === 0 ? 'figure8' : 'mixed';
}

export interface SimulationOptions {
  readonly seed: number;
  /** Chosen from the seed when omitted (faultProfileOf). */
  readonly profile?: FaultProfile;
  readonly verbose?: boolean;
  /** 3 or 5; chosen from the seed when omitted. */
  readonly nodeCount?: number;
  readonly faultPhaseMs?: VirtualMs;
  readonly settlePhaseMs?: VirtualMs;
  readonly faults?: NemesisFeatures;
  readonly messageFaults?: boolean;
  /** A deliberate host bug, for testing the simulator itself. */
  readonly sabotage?: HostSabotage;
  /** Check each message against its sender's disk as it leaves (default true). */
  readonly checkSentMessages?: boolean;
}

export interface SeedStats {
  nodeCount: number;
  virtualMs: VirtualMs;
  wallMs: number;
  operations: number;
  unknownOutcomes: number;
  committedIndex: number;
  leaderTerms: number;
  messagesSent: number;
  crashes: number;
  partitions: number;
  confChangesProposed: number;
  confChangesApplied: number;
  transfers: number;
  /** Snapshots taken by the groups' snapshot policy (each compacts the log). */
  compactions: number;
  pauses: number;
  snapshotsInstalled: number;
  /** Most writes one node had issued and not yet durable at once (the Ready loop's pipeline). */
  writesInFlightMax: number;
  /** Legs of node-to-node requests: forwarded ReadIndex calls, snapshot streams, their answers. */
  requestLegs: number;
  /** figure8 profile: rounds started, and rounds that struck inside the danger window. */
  figure8Rounds: number;
  figure8Strikes: number;
  checkerMs: number;
}

export interface SeedFailure {
  readonly property: string;
  readonly message: string;
  readonly atMs: VirtualMs;
  readonly traceTail: readonly string[];
}

export interface SeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure?: SeedFailure;
  readonly stats: SeedStats;
}

const tickMs = 10;
const hostTuningDefault: HostTuning = {
  raft: {
    electionTicks: 10,
    heartbeatTicks: 1,
    checkQuorum: true,
    preVote: true,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxUncommittedEntriesSizeBytes: 0,
    maxCommittedSizePerReadyBytes: 1024 * 1024,
  },
  syncDelayMsMax: 4,
  snapshotEveryEntries: 10_000,
  compactMarginEntries: 2_000,
  requestTimeoutMs: 500,
  sabotage: 'none',
  forwardProbability: 0.2,
};
/** Slowest fsync of a seed's disks, at most: writes pile up in flight behind it. */
const syncDelayMsMaxMax = 12;
/** Some seeds run on slow disks (a saturated volume), so that many writes are in flight and
 *  answers wait behind fsyncs longer than a heartbeat. Still well inside Raft's timing
 *  requirement (section 5.6): a vote is an fsync, and with fsyncs as long as the election
 *  timeout no election completes (seed 5185 churned through 120 terms: 50 ms timeouts, 119 ms
 *  fsyncs). */
const slowDiskProbability = 0.15;
const slowDiskSyncDelayMsMin = 30;
/** The slowest fsync, as a share of the shortest election timeout. */
const slowDiskElectionShareMax = 0.5;
const faultyNetwork: NetworkFaults = {
  dropProbability: 0.03,
  duplicateProbability: 0.03,
  delayMinMs: 1,
  delayMaxMs: 8,
  longDelayProbability: 0.02,
  longDelayMaxMs: 400,
  streamBreakProbability: 0.15,
};
const workloadOptions: WorkloadOptions = {
  clientCount: 4,
  keys: ['x', 'y', 'z'],
  timeoutMs: 600,
  thinkMsMax: 20,
  retryDelayMs: 15,
  latencyMsMax: 3,
  readFraction: 0.4,
  casFraction: 0.3,
  readAnyNodeProbability: 0.5,
};
const faultPhaseMsDefault = 6_000;
const settlePhaseMsDefault = 2_500;
const logMatchingEveryMs = 250;
/** Spare node ids beyond the founders, for membership changes. */
const spareNodeCount = 4;
const checkerTimeoutMs = 20_000;

/** How a failing seed is replayed from a shell. */
export function replayCommand(seed: number): string {
  return `npx tsc -p tsconfig.json && node dist/test/sim/soak.js --seed ${seed} --verbose`;
}

export function describeFailure(result: SeedResult): string {
  const failure = result.failure;
  if (failure === undefined) return `seed ${result.seed}: ok`;
  return [
    `seed ${result.seed} FAILED at ${failure.atMs}ms virtual: ${failure.property}`,
    `  ${failure.message}`,
    `  replay: ${replayCommand(result.seed)}`,
  ].join('\n');
}

class Cluster {
  readonly scheduler = new Scheduler();
  readonly random: Prng;
  readonly trace: Trace;
  readonly invariants: InvariantChecker;
  readonly network: Network;
  private readonly hostsById = new Map<NodeId, SimHost>();
  private readonly spareIds: NodeId[] = [];
  /** Nodes named by a committed removeNode (with that entry's index), decommissioned once a
   *  configuration at or after that index no longer has them. */
  private readonly removing = new Map<NodeId, LogIndex>();
  confChangesApplied = 0;
  snapshotsInstalled = 0;
  snapshotsTaken = 0;
  /** The first thing that went wrong inside a host (a group stopped itself). */
  failure: SafetyViolation | undefined;

  constructor(
    seed: number,
    nodeCount: number,
    verbose: boolean,
    private readonly hostTuning: HostTuning,
    checkSentMessages: boolean,
  ) {
    this.invariants = new InvariantChecker(checkSentMessages);
    this.random = new Prng(seed);
    this.trace = new Trace(() => this.scheduler.now, verbose);
    this.network = new Network(
      this.scheduler,
      this.random.fork(),
      {
        deliver: (message) => {
          const host = this.hostsById.get(message.to);
          if (host !== undefined && !host.decommissioned) host.receive(message);
        },
        unreachable: (message) => this.hostsById.get(message.from)?.reportUnreachable(message.to),
      },
      faultyNetwork,
    );
    const founders = Array.from({ length: nodeCount }, (_, i) => `n${i + 1}`);
    for (let i = 0; i < spareNodeCount; i++) this.spareIds.push(`n${nodeCount + i + 1}`);
    for (const id of founders) this.createHost(id, founders).start();
  }

  hosts(): SimHost[] {
    return [...this.hostsById.values()];
  }

  leader(): SimHost | undefined {
    let best: SimHost | undefined;
    let bestTerm = -1;
    for (const host of this.hostsById.values()) {
      if (!host.alive || !host.isLeader) continue;
      const term = host.currentTerm;
      if (term > bestTerm) {
        best = host;
        bestTerm = term;
      }
    }
    return best;
  }

  takeSpareId(): NodeId | undefined {
    return this.spareIds.shift();
  }

  addHost(id: NodeId): void {
    if (this.hostsById.has(id)) return;
    this.createHost(id, undefined).start();
  }

  restart(host: SimHost): void {
    host.start();
  }

  private createHost(id: NodeId, founders: readonly NodeId[] | undefined): SimHost {
    const context: HostContext = {
      scheduler: this.scheduler,
      network: this.network,
      invariants: this.invariants,
      trace: this.trace,
      hostOf: (nodeId) => {
        const host = this.hostsById.get(nodeId);
        return host !== undefined && !host.decommissioned ? host : undefined;
      },
      onConfChangeApplied: (nodeId, index, change, confState) => this.onConfChangeApplied(nodeId, index, change, confState),
      onSnapshotInstalled: () => this.snapshotsInstalled++,
      onSnapshotTaken: () => this.snapshotsTaken++,
      onErrorLogged: (nodeId, line) => {
        this.failure ??= new SafetyViolation('host error', `${nodeId} logged ${line}`);
      },
      onFatal: (nodeId, error, where) => {
        this.failure ??=
          error instanceof SafetyViolation
            ? error
            : new SafetyViolation('host stopped', `${nodeId}: ${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      },
    };
    const host = new SimHost(id, context, this.hostTuning, this.random.fork(), founders);
    this.hostsById.set(id, host);
    return host;
  }

  private onConfChangeApplied(nodeId: NodeId, index: LogIndex, change: ConfChange, confState: ConfState): void {
    this.confChangesApplied++;
    for (const single of change.changes) {
      if (single.type === 'removeNode' && !this.removing.has(single.nodeId)) this.removing.set(single.nodeId, index);
    }
    for (const [id, removedAt] of [...this.removing]) {
      // A replica replaying older entries reports older configurations: not a decision.
      if (index < removedAt) continue;
      const stillMember = [confState.voters, confState.learners, confState.votersOutgoing, confState.learnersNext].some(
        (list) => list.includes(id),
      );
      if (stillMember) continue;
      // The entry that removed it is committed: the operator now shuts the node down for good
      // (after a moment, so it may or may not hear about its removal first).
      this.removing.delete(id);
      const host = this.hostsById.get(id);
      if (host === undefined || host.decommissioned) continue;
      this.scheduler.schedule(this.random.int(200), () => {
        this.trace.log(`operator: decommission ${id} (removal applied by ${nodeId})`);
        host.decommission();
      });
    }
  }
}

/** Lets the promise jobs started so far run to completion (the rest of an event loop turn). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function runSeed(options: SimulationOptions): Promise<SeedResult> {
  const started = performance.now();
  const seedRandom = new Prng(options.seed);
  const profile = options.profile ?? faultProfileOf(options.seed);
  const drawnNodeCount = options.nodeCount ?? (seedRandom.chance(0.5) ? 3 : 5);
  const nodeCount = profile === 'figure8' ? figure8VoterCount : drawnNodeCount;
  const randomTuning = randomRaftTuning(seedRandom);
  const features = profile === 'figure8' ? figure8Faults : (options.faults ?? allFaults);
  const slowDiskSyncDelayMsMax = randomTuning.electionTicks * tickMs * slowDiskElectionShareMax;
  const slowDisk = seedRandom.chance(slowDiskProbability) && slowDiskSyncDelayMsMax > slowDiskSyncDelayMsMin;
  const hostTuning: HostTuning = {
    ...hostTuningDefault,
    raft: profile === 'figure8' ? figure8RaftTuning(randomTuning, seedRandom) : randomTuning,
    // Disk speed varies per run: how long a write stays issued and not durable.
    syncDelayMsMax: slowDisk ? seedRandom.between(slowDiskSyncDelayMsMin, slowDiskSyncDelayMsMax) : seedRandom.between(0, syncDelayMsMaxMax),
    ...snapshotPolicyOf(features, seedRandom),
    sabotage: options.sabotage ?? 'none',
  };
  const cluster = new Cluster(options.seed, nodeCount, options.verbose ?? false, hostTuning, options.checkSentMessages ?? true);
  const { scheduler, network, invariants, trace } = cluster;
  trace.log(`seed ${options.seed}: ${profile} profile, ${nodeCount} nodes, tuning ${JSON.stringify(hostTuning)}`);
  const faultPhaseMs = options.faultPhaseMs ?? faultPhaseMsDefault;
  const settlePhaseMs = Math.max(options.settlePhaseMs ?? settlePhaseMsDefault, workloadOptions.timeoutMs + 500);
  const endMs = faultPhaseMs + settlePhaseMs;
  if (options.messageFaults === false) network.faults = quietNetwork;
  const nemesis = new Nemesis(features, cluster, network, scheduler, cluster.random.fork(), trace);
  const figure8 = profile === 'figure8' ? new Figure8Nemesis(cluster, network, scheduler, cluster.random.fork(), trace) : undefined;
  const workload = new Workload(workloadOptions, scheduler, cluster.random.fork(), () => cluster.hosts(), trace);
  const tickPhase = new Map<NodeId, number>();
  const stepRandom = cluster.random.fork();

  const stats: SeedStats = {
    nodeCount,
    virtualMs: 0,
    wallMs: 0,
    operations: 0,
    unknownOutcomes: 0,
    committedIndex: 0,
    leaderTerms: 0,
    messagesSent: 0,
    crashes: 0,
    partitions: 0,
    confChangesProposed: 0,
    confChangesApplied: 0,
    transfers: 0,
    compactions: 0,
    pauses: 0,
    snapshotsInstalled: 0,
    writesInFlightMax: 0,
    requestLegs: 0,
    figure8Rounds: 0,
    figure8Strikes: 0,
    checkerMs: 0,
  };
  const finish = (failure?: SeedFailure): SeedResult => {
    Object.assign(stats, {
      virtualMs: scheduler.now,
      wallMs: Math.round(performance.now() - started),
      operations: workload.history.length,
      unknownOutcomes: workload.stats.timedOut,
      committedIndex: invariants.committedIndexMax,
      leaderTerms: invariants.leaderTermCount,
      messagesSent: network.stats.sent,
      crashes: nemesis.stats.crashes,
      partitions: nemesis.stats.partitions + (figure8?.stats.partitions ?? 0),
      confChangesProposed: nemesis.stats.confChangesProposed,
      confChangesApplied: cluster.confChangesApplied,
      transfers: nemesis.stats.transfers,
      compactions: cluster.snapshotsTaken,
      pauses: nemesis.stats.pauses,
      snapshotsInstalled: cluster.snapshotsInstalled,
      writesInFlightMax: Math.max(0, ...cluster.hosts().map((host) => host.disk.unsyncedWritesMax)),
      requestLegs: network.stats.legs,
      figure8Rounds: figure8?.figure8.rounds ?? 0,
      figure8Strikes: figure8?.figure8.strikes ?? 0,
    });
    return failure === undefined ? { seed: options.seed, ok: true, stats } : { seed: options.seed, ok: false, failure, stats };
  };
  const fail = (property: string, message: string): SeedResult =>
    finish({ property, message, atMs: scheduler.now, traceTail: trace.tail() });

  const failed = (): void => {
    if (cluster.failure !== undefined) throw cluster.failure;
  };
  try {
    for (let now = 0; now <= endMs; now++) {
      scheduler.now = now;
      while (scheduler.runNextDue()) {
        await settle();
        failed();
      }
      if (now < faultPhaseMs) {
        nemesis.step();
        figure8?.step();
      } else if (now === faultPhaseMs) {
        figure8?.heal();
        calm(cluster, nemesis, network);
      }
      if (now === endMs - workloadOptions.timeoutMs - 100) workload.issuing = false;
      const hosts = cluster.hosts();
      for (const host of hosts) {
        let phase = tickPhase.get(host.id);
        if (phase === undefined) {
          phase = stepRandom.int(tickMs);
          tickPhase.set(host.id, phase);
        }
        if (now % tickMs === phase) host.tick();
      }
      workload.step();
      await settle();
      failed();
      if (now % logMatchingEveryMs === 0) {
        invariants.checkLogMatching(persistedLogs(cluster));
        checkSnapshotFiles(cluster);
      }
    }
    invariants.checkLogMatching(persistedLogs(cluster));
    checkSnapshotFiles(cluster);
  } catch (error) {
    if (error instanceof SafetyViolation) return fail(error.property, error.message);
    return fail('exception', error instanceof Error ? (error.stack ?? error.message) : String(error));
  }

  const liveness = checkConverged(cluster);
  if (liveness !== undefined) return fail('liveness', liveness);
  const checkerStarted = performance.now();
  const verdict = checkKv(workload.history, { timeoutMs: checkerTimeoutMs });
  stats.checkerMs = Math.round(performance.now() - checkerStarted);
  if (!verdict.ok) {
    const property = verdict.verdict === 'illegal' ? 'linearizability' : 'linearizability (checker budget exhausted)';
    return fail(property, verdict.reason);
  }
  return finish();
}

/** Most seeds run production-like settings; the rest shrink every bound so that appends are
 *  split, pipelines stall on inflight limits, committed entries come in pages and proposals
 *  get dropped, and some run without PreVote or CheckQuorum. */
function randomRaftTuning(random: Prng): RaftTuning {
  const base = hostTuningDefault.raft;
  const electionTicks = random.pick([5, 10, 10, 20]);
  const tuning: RaftTuning = {
    ...base,
    electionTicks,
    heartbeatTicks: random.between(1, Math.min(3, electionTicks - 1)),
    checkQuorum: random.chance(0.8),
    preVote: random.chance(0.8),
  };
  if (random.chance(0.6)) return tuning;
  const maxSizePerMsgBytes = random.pick([0, 64, 256]);
  return {
    ...tuning,
    maxSizePerMsgBytes,
    maxInflightMsgs: random.between(1, 4),
    maxInflightBytes: random.chance(0.5) ? 0 : Math.max(maxSizePerMsgBytes, 512),
    maxUncommittedEntriesSizeBytes: random.chance(0.5) ? 0 : 2_048,
    maxCommittedSizePerReadyBytes: random.pick([1, 128, 1_024]),
  };
}

/** With compaction, the group's snapshot policy snapshots every few dozen entries and keeps a
 *  short margin, so lagging and new members often catch up from a snapshot; without, it keeps
 *  production's long intervals (which these runs never reach). */
function snapshotPolicyOf(features: NemesisFeatures, random: Prng): Pick<HostTuning, 'snapshotEveryEntries' | 'compactMarginEntries'> {
  if (!features.compaction) return { snapshotEveryEntries: hostTuningDefault.snapshotEveryEntries, compactMarginEntries: hostTuningDefault.compactMarginEntries };
  return { snapshotEveryEntries: random.pick([8, 16, 32, 64]), compactMarginEntries: random.int(21) };
}

/** The figure8 profile keeps the membership at five voters (the scenario needs them) and leaves
 *  the network cuts to the scenario; compaction stays, so catch-up sometimes needs a snapshot. */
const figure8Faults: NemesisFeatures = {
  crashes: false,
  partitions: false,
  confChanges: false,
  leaderTransfers: false,
  compaction: true,
  pauses: false,
};

/** Figure 8 only bites when a new leader brings a follower up to date in several steps: pages of
 *  a few entries, so that for a while a majority holds old-term entries but not the new term's. */
function figure8RaftTuning(base: RaftTuning, random: Prng): RaftTuning {
  return {
    ...base,
    maxSizePerMsgBytes: random.pick([0, 64, 128]),
    maxInflightMsgs: random.between(1, 4),
  };
}

/** End of the fault phase: heal the network, restart every crashed node, stop message faults. */
function calm(cluster: Cluster, nemesis: Nemesis, network: Network): void {
  cluster.trace.log('calm: heal, restart everything, stop faults');
  nemesis.heal();
  network.faults = quietNetwork;
  for (const host of cluster.hosts()) {
    host.resume();
    if (!host.decommissioned && !host.alive) cluster.restart(host);
  }
}

/** Every node keeps the file of the snapshot its log starts from, in memory and on disk. */
function checkSnapshotFiles(cluster: Cluster): void {
  for (const host of cluster.hosts()) {
    const indexes = [host.durableLog.snapshot().metadata.index, host.group?.logBounds().snapshotIndex ?? 0];
    for (const index of indexes) cluster.invariants.checkSnapshotKept(host.id, index, host.disk.files.has(snapshotFileOf(index)));
  }
}

/** Every node's log as its disk holds it. */
function persistedLogs(cluster: Cluster): Map<NodeId, Storage> {
  return new Map(cluster.hosts().map((host) => [host.id, host.durableLog]));
}

/** After the calm phase there must be a leader, and every member must have applied everything. */
function checkConverged(cluster: Cluster): string | undefined {
  const leader = cluster.leader();
  const status = leader?.status();
  if (leader === undefined || status === undefined) {
    const roles = cluster.hosts().map((host) => `${host.id}:${host.decommissioned ? 'gone' : (host.status()?.softState.role ?? 'down')}`).join(' ');
    return `no leader after the calm phase (${roles})`;
  }
  const members = new Set([...status.confState.voters, ...status.confState.learners, ...status.confState.votersOutgoing]);
  const lagging = cluster
    .hosts()
    .filter((host) => members.has(host.id) && host.appliedIndex !== leader.appliedIndex)
    .map((host) => `${host.id} applied ${host.appliedIndex}`);
  if (lagging.length > 0) {
    return `leader ${leader.id} applied ${leader.appliedIndex} (commit ${status.hardState.commit}) but ${lagging.join(', ')}`;
  }
  if (leader.leaderId === NONE) return `leader ${leader.id} does not know it leads`;
  return undefined;
}
