// The simulated network between raft nodes: every message may be dropped, duplicated or
// delayed (different delays reorder messages on the same link), and links can be cut in one or
// both directions to build partitions. Request/response exchanges between nodes (a forwarded
// ReadIndex, a snapshot stream: see transport.ts) travel as legs that may be lost or delayed
// the same way. Client <-> node traffic does not go through here (see clients.ts): the nemesis
// targets consensus, not the client's connection.

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
  /** A long transfer (a snapshot stream) breaks halfway, and the sender notices. */
  readonly streamBreakProbability: number;
}

export const quietNetwork: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayMinMs: 1,
  delayMaxMs: 5,
  longDelayProbability: 0,
  longDelayMaxMs: 0,
  streamBreakProbability: 0,
};

export interface NetworkEndpoints {
  /** Hand a message to its destination (which may be down: then it is lost). */
  deliver(message: Message): void;
  /** The sender's transport noticed the link is down (reported to its core). */
  unreachable(message: Message): void;
}

export interface NetworkStats {
  sent: number;
  dropped: number;
  duplicated: number;
  blocked: number;
  /** Legs of request/response exchanges (each request and each answer is one). */
  legs: number;
}

/** Chance that a message sent over a cut link makes the sender's transport report the peer
 *  unreachable. */
const unreachableReportProbability = 0.1;

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

export class Network {
  faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, dropped: 0, duplicated: 0, blocked: 0, legs: 0 };
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
      // A cut link breaks the connection, which the transport notices now and then.
      if (this.random.chance(unreachableReportProbability)) this.endpoints.unreachable(message);
      return;
    }
    if (this.random.chance(this.faults.dropProbability)) {
      this.stats.dropped++;
      return;
    }
    const deliver = (): void => this.endpoints.deliver(message);
    this.carry(message.from, message.to, deliver);
    if (this.random.chance(this.faults.duplicateProbability)) {
      this.stats.duplicated++;
      this.carry(message.from, message.to, deliver);
    }
  }

  /**
   * One leg of a request/response exchange from `from` to `to`: `arrive` runs at the far end
   * unless the leg is lost (dropped, or the link cut before it arrives). Never duplicated: a
   * connection does not replay a request. The sender notices at once when the link is cut
   * already (the connection is refused) or a stream breaks; a silent loss it notices only by
   * its own timeout.
   */
  leg(from: NodeId, to: NodeId, arrive: () => void, kind: 'request' | 'stream' = 'request'): 'carried' | 'lost' | 'refused' | 'broken' {
    this.stats.legs++;
    if (this.isCut(from, to)) {
      this.stats.blocked++;
      return 'refused';
    }
    if (kind === 'stream' && this.random.chance(this.faults.streamBreakProbability)) {
      this.stats.dropped++;
      return 'broken';
    }
    if (this.random.chance(this.faults.dropProbability)) {
      this.stats.dropped++;
      return 'lost';
    }
    this.carry(from, to, arrive);
    return 'carried';
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

  private carry(from: NodeId, to: NodeId, arrive: () => void): void {
    const faults = this.faults;
    const delayMs = this.random.chance(faults.longDelayProbability)
      ? this.random.between(faults.delayMaxMs, Math.max(faults.delayMaxMs, faults.longDelayMaxMs))
      : this.random.between(faults.delayMinMs, faults.delayMaxMs);
    this.scheduler.schedule(delayMs, () => {
      // A link cut while the message was in flight loses it too (the connection broke).
      if (this.isCut(from, to)) {
        this.stats.blocked++;
        return;
      }
      arrive();
    });
  }
}
