// The fault injector: crashes and restarts, partitions of every shape, membership changes,
// leader transfers and pauses, each at a random moment drawn from the run's PRNG. (Compaction
// is the group's own snapshot policy, tuned per seed in simulation.ts.)

import { GroupUnavailableError } from '../../src/group/errors.js';
import { ProposalDroppedError, type ConfChange, type ConfChangeSingle, type NodeId } from '../../src/raft/types.js';
import type { SimHost } from './host.js';
import type { Network } from './network.js';
import type { Prng } from './prng.js';
import type { Scheduler, VirtualMs } from './scheduler.js';
import type { Trace } from './trace.js';

export interface NemesisFeatures {
  readonly crashes: boolean;
  readonly partitions: boolean;
  readonly confChanges: boolean;
  readonly leaderTransfers: boolean;
  /** The snapshot policy snapshots and compacts every few dozen entries (else: rarely). */
  readonly compaction: boolean;
  readonly pauses: boolean;
}

export const allFaults: NemesisFeatures = {
  crashes: true,
  partitions: true,
  confChanges: true,
  leaderTransfers: true,
  compaction: true,
  pauses: true,
};

/** Mean virtual time between two faults of each kind (each ms is a Bernoulli trial). */
const crashEveryMs = 1_500;
const partitionEveryMs = 1_200;
const confChangeEveryMs = 600;
const transferEveryMs = 1_500;
const pauseEveryMs = 2_000;
const pauseDurationMsMin = 50;
const pauseDurationMsMax = 1_500;
const restartDelayMsMin = 30;
const restartDelayMsMax = 1_500;
const partitionDurationMsMin = 100;
const partitionDurationMsMax = 2_500;
/** Hosts down at once: more would mostly measure how long a stalled cluster stays stalled. */
const crashedHostsMax = 2;
const votersMin = 3;
const votersMax = 5;
const membersMax = 7;

export interface NemesisCluster {
  hosts(): readonly SimHost[];
  leader(): SimHost | undefined;
  /** Create and start a host for a node that is about to be added. */
  addHost(id: NodeId): void;
  takeSpareId(): NodeId | undefined;
  restart(host: SimHost): void;
}

export interface NemesisStats {
  crashes: number;
  partitions: number;
  confChangesProposed: number;
  transfers: number;
  pauses: number;
}

export class Nemesis {
  readonly stats: NemesisStats = { crashes: 0, partitions: 0, confChangesProposed: 0, transfers: 0, pauses: 0 };
  private partitionHealsAt: VirtualMs | undefined;

  constructor(
    private readonly features: NemesisFeatures,
    private readonly cluster: NemesisCluster,
    private readonly network: Network,
    private readonly scheduler: Scheduler,
    private readonly random: Prng,
    private readonly trace: Trace,
  ) {}

  step(): void {
    const random = this.random;
    if (this.features.crashes && random.chance(1 / crashEveryMs)) this.crashOne();
    if (this.features.partitions) {
      if (this.partitionHealsAt !== undefined && this.scheduler.now >= this.partitionHealsAt) this.heal();
      else if (this.partitionHealsAt === undefined && random.chance(1 / partitionEveryMs)) this.partition();
    }
    if (this.features.confChanges && random.chance(1 / confChangeEveryMs)) this.changeMembership();
    if (this.features.leaderTransfers && random.chance(1 / transferEveryMs)) this.transferLeader();
    if (this.features.pauses && random.chance(1 / pauseEveryMs)) this.pauseOne();
  }

  private pauseOne(): void {
    const up = this.candidates().filter((host) => host.alive && !host.paused);
    if (up.length === 0) return;
    // Pausing the leader is the interesting case: it wakes up still believing it leads.
    const leader = this.cluster.leader();
    const victim = leader !== undefined && !leader.paused && this.random.chance(0.5) ? leader : this.random.pick(up);
    const durationMs = this.random.between(pauseDurationMsMin, pauseDurationMsMax);
    victim.pause();
    this.stats.pauses++;
    this.trace.log(`nemesis: pause ${victim.id} (${victim.role}) for ${durationMs}ms`);
    const incarnation = victim.incarnation;
    this.scheduler.schedule(durationMs, () => {
      if (victim.incarnation === incarnation) victim.resume();
    });
  }

  heal(): void {
    if (this.network.cutLinkCount > 0) this.trace.log('nemesis: heal all partitions');
    this.network.heal();
    this.partitionHealsAt = undefined;
  }

  private candidates(): SimHost[] {
    return this.cluster.hosts().filter((host) => !host.decommissioned);
  }

  private crashOne(): void {
    const hosts = this.candidates();
    const down = hosts.filter((host) => !host.alive).length;
    const up = hosts.filter((host) => host.alive);
    if (down >= crashedHostsMax || up.length === 0) return;
    // Half the time, strike a host with writes issued and not durable: that is where a host
    // that sends before persisting, or a core that relies on unpersisted state, breaks.
    const midWrite = up.filter((host) => host.hasWritesInFlight);
    const victim = midWrite.length > 0 && this.random.chance(0.5) ? this.random.pick(midWrite) : this.random.pick(up);
    victim.crash();
    this.stats.crashes++;
    const restartInMs = this.random.between(restartDelayMsMin, restartDelayMsMax);
    this.trace.log(`nemesis: crash ${victim.id} (${victim.role}), restart in ${restartInMs}ms`);
    this.scheduler.schedule(restartInMs, () => {
      if (!victim.decommissioned && !victim.alive) this.cluster.restart(victim);
    });
  }

  private partition(): void {
    const ids = this.candidates().map((host) => host.id);
    if (ids.length < 2) return;
    const shuffled = [...ids];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const leader = this.cluster.leader();
    const shape = this.random.int(4);
    let description: string;
    if (shape === 0) {
      const cut = this.random.between(1, shuffled.length - 1);
      const [a, b] = [shuffled.slice(0, cut), shuffled.slice(cut)];
      this.network.cutBetween(a, b);
      description = `split [${a.join(',')}] | [${b.join(',')}]`;
    } else if (shape === 1) {
      const isolated = leader?.id ?? shuffled[0]!;
      this.network.cutBetween([isolated], ids.filter((id) => id !== isolated));
      description = `isolate ${isolated}${leader !== undefined ? ' (leader)' : ''}`;
    } else if (shape === 2) {
      const node = shuffled[0]!;
      const others = ids.filter((id) => id !== node);
      if (this.random.chance(0.5)) {
        this.network.cutOneWay([node], others);
        description = `one-way: ${node} cannot send`;
      } else {
        this.network.cutOneWay(others, [node]);
        description = `one-way: ${node} cannot receive`;
      }
    } else {
      if (shuffled.length < 3) return;
      const bridge = shuffled[0]!;
      const rest = shuffled.slice(1);
      const cut = this.random.between(1, rest.length - 1);
      const [a, b] = [rest.slice(0, cut), rest.slice(cut)];
      this.network.cutBetween(a, b);
      description = `bridge ${bridge} between [${a.join(',')}] and [${b.join(',')}]`;
    }
    const durationMs = this.random.between(partitionDurationMsMin, partitionDurationMsMax);
    this.partitionHealsAt = this.scheduler.now + durationMs;
    this.stats.partitions++;
    this.trace.log(`nemesis: partition ${description} for ${durationMs}ms`);
  }

  private transferLeader(): void {
    const leader = this.cluster.leader();
    const group = leader?.group;
    // A paused process takes no admin request either.
    if (leader === undefined || group === undefined || leader.paused) return;
    const voters = group.status().confState.voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const target = this.random.pick(voters);
    this.stats.transfers++;
    this.trace.log(`nemesis: transfer leadership ${leader.id} -> ${target}`);
    group.transferLeadership(target);
  }

  private changeMembership(): void {
    const leader = this.cluster.leader();
    const group = leader?.group;
    if (leader === undefined || group === undefined || leader.paused) return;
    const confState = group.status().confState;
    let change: ConfChange | undefined;
    if (confState.votersOutgoing.length > 0) {
      // In a joint configuration that must be left explicitly: leave it (or linger a while).
      if (!confState.autoLeave && this.random.chance(0.7)) change = { changes: [], transition: 'auto' };
    } else {
      change = this.pickChange(confState.voters, confState.learners);
    }
    if (change === undefined) return;
    const description = describeChange(change);
    try {
      group.proposeConfChange(change);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError || error instanceof GroupUnavailableError)) throw error;
      this.trace.log(`nemesis: conf change ${description} dropped (${error.message})`);
      return;
    }
    this.stats.confChangesProposed++;
    this.trace.log(`nemesis: propose conf change ${description} via ${leader.id}`);
  }

  private pickChange(voters: readonly NodeId[], learners: readonly NodeId[]): ConfChange | undefined {
    const random = this.random;
    const transition = (): ConfChange['transition'] => random.pick(['auto', 'joint', 'jointAutoLeave'] as const);
    const members = voters.length + learners.length;
    const choice = random.int(6);
    const single = (type: ConfChangeSingle['type'], nodeId: NodeId): ConfChangeSingle => ({ type, nodeId });
    switch (choice) {
      case 0: {
        if (members >= membersMax) return undefined;
        const id = this.cluster.takeSpareId();
        if (id === undefined) return undefined;
        this.cluster.addHost(id);
        return { changes: [single('addLearner', id)], transition: 'auto' };
      }
      case 1: {
        if (learners.length === 0 || voters.length >= votersMax) return undefined;
        return { changes: [single('addNode', random.pick(learners))], transition: transition() };
      }
      case 2: {
        if (learners.length === 0) return undefined;
        return { changes: [single('removeNode', random.pick(learners))], transition: 'auto' };
      }
      case 3: {
        if (voters.length <= votersMin) return undefined;
        return { changes: [single('removeNode', random.pick(voters))], transition: transition() };
      }
      case 4: {
        // Swap a learner in for a voter in one step: needs a joint configuration.
        if (learners.length === 0) return undefined;
        const incoming = random.pick(learners);
        const outgoing = random.pick(voters);
        const demote = random.chance(0.5);
        return {
          changes: [single('addNode', incoming), single(demote ? 'addLearner' : 'removeNode', outgoing)],
          transition: random.pick(['joint', 'jointAutoLeave', 'auto'] as const),
        };
      }
      default: {
        if (voters.length <= votersMin) return undefined;
        return { changes: [single('addLearner', random.pick(voters))], transition: transition() };
      }
    }
  }
}

export function describeChange(change: ConfChange): string {
  if (change.changes.length === 0) return 'leave joint';
  const parts = change.changes.map((single) => `${single.type}(${single.nodeId})`);
  return `[${parts.join(', ')}] ${change.transition}`;
}
