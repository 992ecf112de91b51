// The membership a node currently acts on, the leader's Progress per member, and the votes of
// the current election.
import { Progress } from './progress.js';
import { jointCommittedIndex, jointVoteResult, type JointConfig, type VoteResult } from './quorum.js';
import type { ConfState, LogIndex, NodeId } from './types.js';

export interface TrackerConfig {
  readonly voters: { readonly incoming: Set<NodeId>; readonly outgoing: Set<NodeId> };
  readonly learners: Set<NodeId>;
  /** Outgoing voters that become learners when the joint config is left. */
  readonly learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: { incoming: new Set(), outgoing: new Set() }, learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function cloneTrackerConfig(config: TrackerConfig): TrackerConfig {
  return {
    voters: { incoming: new Set(config.voters.incoming), outgoing: new Set(config.voters.outgoing) },
    learners: new Set(config.learners),
    learnersNext: new Set(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

export function isJoint(config: TrackerConfig): boolean {
  return config.voters.outgoing.size > 0;
}

function sorted(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort();
}

export function confStateOfConfig(config: TrackerConfig): ConfState {
  return {
    voters: sorted(config.voters.incoming),
    learners: sorted(config.learners),
    votersOutgoing: sorted(config.voters.outgoing),
    learnersNext: sorted(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

export type ProgressMap = Map<NodeId, Progress>;

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  private progressMap: ProgressMap = new Map();
  /** Member ids in sorted order, so every node iterates (and sends) deterministically. */
  private sortedIds: NodeId[] = [];
  readonly votes = new Map<NodeId, boolean>();
  readonly inflightCountMax: number;
  readonly inflightBytesMax: number;

  constructor(inflightCountMax: number, inflightBytesMax: number) {
    this.inflightCountMax = inflightCountMax;
    this.inflightBytesMax = inflightBytesMax;
  }

  get progress(): ReadonlyMap<NodeId, Progress> {
    return this.progressMap;
  }

  setConfig(config: TrackerConfig, progress: ProgressMap): void {
    this.config = config;
    this.progressMap = progress;
    this.sortedIds = sorted(progress.keys());
  }

  confState(): ConfState {
    return confStateOfConfig(this.config);
  }

  jointConfig(): JointConfig {
    return this.config.voters;
  }

  /** A single voter and nobody else to wait for: commits and reads need no round trip. */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.incoming.has(id) || this.config.voters.outgoing.has(id);
  }

  /** The largest index a quorum (of both halves when joint) has matched. */
  committed(): LogIndex {
    return jointCommittedIndex(this.config.voters, (id) => this.progressMap.get(id)?.match);
  }

  /** Visits members in id order. */
  visit(visitor: (id: NodeId, progress: Progress) => void): void {
    for (const id of this.sortedIds) visitor(id, this.progressMap.get(id)!);
  }

  /** Sorted ids of all voters (both halves of a joint config). */
  voterIds(): NodeId[] {
    return sorted(new Set([...this.config.voters.incoming, ...this.config.voters.outgoing]));
  }

  /** Whether a quorum was recently active (CheckQuorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    this.visit((id, progress) => {
      if (!progress.isLearner) votes.set(id, progress.recentActive);
    });
    return jointVoteResult(this.config.voters, votes) === 'won';
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records the first vote of `id` in this election; later duplicates are ignored. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): VoteResult {
    return jointVoteResult(this.config.voters, this.votes);
  }

  /** Election result for a set of acks (ReadIndex heartbeat round). */
  quorumResult(acks: ReadonlySet<NodeId>): VoteResult {
    const votes = new Map<NodeId, boolean>();
    for (const id of acks) votes.set(id, true);
    return jointVoteResult(this.config.voters, votes);
  }
}
