// The simulated network between raft nodes: every message may be dropped, duplicated or
// delayed (different delays reorder messages on the same link), and links can be cut in one or
// both directions to build partitions. Client <-> node traffic does not go through here (see
// clients.ts): the nemesis targets consensus, not the client's connection.

import type { Message, NodeId } from '../../src/raft/types.js';
import type { Prng } from './prng.js';
import type { Scheduler, VirtualMs } from './scheduler.js';

export interface NetworkFaults {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly delayMinMs: VirtualMs;
  readonly delayMaxMs: VirtualMs;
  /** Some messages sit in a queue somewhere for much longer: the main source of reordering. */
  readonly longDelayProbability: number;
  readonly longDelayMaxMs: VirtualMs;
}

export const quietNetwork: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayMinMs: 1,
  delayMaxMs: 5,
  longDelayProbability: 0,
  longDelayMaxMs: 0,
};

export interface NetworkEndpoints {
  /** Hand a message to its destination (which may be down: then it is lost). */
  deliver(message: Message): void;
  /** A snapshot message was delivered or lost: the sender's transport reports it to the core. */
  snapshotOutcome(message: Message, delivered: boolean): void;
  /** The sender's transport noticed the link is down (reported to its core). */
  unreachable(message: Message): void;
}

export interface NetworkStats {
  sent: number;
  dropped: number;
  duplicated: number;
  blocked: number;
}

/** Chance that a message sent over a cut link makes the sender's transport report the peer
 *  unreachable. */
const unreachableReportProbability = 0.1;

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

export class Network {
  faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, dropped: 0, duplicated: 0, blocked: 0 };
  /** Directed links currently cut. */
  private readonly cut = new Set<string>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Prng,
    private readonly endpoints: NetworkEndpoints,
    faults: NetworkFaults,
  ) {
    this.faults = faults;
  }

  send(message: Message): void {
    this.stats.sent++;
    if (this.isCut(message.from, message.to)) {
      this.stats.blocked++;
      this.lose(message);
      // A cut link breaks the connection, which the transport notices now and then.
      if (this.random.chance(unreachableReportProbability)) this.endpoints.unreachable(message);
      return;
    }
    if (this.random.chance(this.faults.dropProbability)) {
      this.stats.dropped++;
      this.lose(message);
      return;
    }
    this.inFlight(message);
    if (this.random.chance(this.faults.duplicateProbability)) {
      this.stats.duplicated++;
      this.inFlight(message);
    }
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  /** Cut every link from a node of `from` to a node of `to` (one direction only). */
  cutOneWay(from: readonly NodeId[], to: readonly NodeId[]): void {
    for (const a of from) for (const b of to) if (a !== b) this.cut.add(linkKey(a, b));
  }

  /** Cut both directions between the two groups. */
  cutBetween(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    this.cutOneWay(groupA, groupB);
    this.cutOneWay(groupB, groupA);
  }

  heal(): void {
    this.cut.clear();
  }

  get cutLinkCount(): number {
    return this.cut.size;
  }

  private inFlight(message: Message): void {
    const faults = this.faults;
    const delayMs = this.random.chance(faults.longDelayProbability)
      ? this.random.between(faults.delayMaxMs, Math.max(faults.delayMaxMs, faults.longDelayMaxMs))
      : this.random.between(faults.delayMinMs, faults.delayMaxMs);
    this.scheduler.schedule(delayMs, () => {
      // A link cut while the message was in flight loses it too (the connection broke).
      if (this.isCut(message.from, message.to)) {
        this.stats.blocked++;
        this.lose(message);
        return;
      }
      this.endpoints.deliver(message);
      if (message.type === 'snap') this.endpoints.snapshotOutcome(message, true);
    });
  }

  private lose(message: Message): void {
    if (message.type === 'snap') {
      // The transport notices a failed snapshot stream; without this report the leader would
      // wait for that follower forever.
      this.scheduler.schedule(this.faults.delayMaxMs, () => this.endpoints.snapshotOutcome(message, false));
    }
  }
}
