// Quorum arithmetic as pure functions: what index a majority (or a joint pair of majorities)
// has acknowledged, and whether an election is won. Nothing here knows about messages.
import type { LogIndex, NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** A joint configuration; `outgoing` is empty outside of a membership transition. */
export interface JointConfig {
  readonly incoming: ReadonlySet<NodeId>;
  readonly outgoing: ReadonlySet<NodeId>;
}

/** The index a voter has acknowledged, or undefined if unknown (counts as 0). */
export type AckedIndex = (id: NodeId) => LogIndex | undefined;

/** Stands in for "everything" so that an empty half of a joint config never holds back the
 *  other half (min(x, EMPTY_CONFIG_COMMITTED) === x). */
export const EMPTY_CONFIG_COMMITTED: LogIndex = Number.MAX_SAFE_INTEGER;

/** The largest index acknowledged by a majority of `voters`. */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, acked: AckedIndex): LogIndex {
  const count = voters.size;
  if (count === 0) return EMPTY_CONFIG_COMMITTED;
  const indexes: LogIndex[] = [];
  for (const id of voters) indexes.push(acked(id) ?? 0);
  indexes.sort((a, b) => b - a);
  // With quorum q = floor(n/2)+1, the q-th largest acknowledgement is held by at least q voters.
  return indexes[Math.floor(count / 2)]!;
}

/** In a joint configuration an index is committed only when both majorities have it. */
export function jointCommittedIndex(config: JointConfig, acked: AckedIndex): LogIndex {
  return Math.min(majorityCommittedIndex(config.incoming, acked), majorityCommittedIndex(config.outgoing, acked));
}

/** Election outcome in one majority config; missing votes may still arrive. */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won'; // an empty config must not decide a joint election
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const quorum = Math.floor(voters.size / 2) + 1;
  if (granted >= quorum) return 'won';
  if (granted + missing >= quorum) return 'pending';
  return 'lost';
}

export function jointVoteResult(config: JointConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const incoming = majorityVoteResult(config.incoming, votes);
  const outgoing = majorityVoteResult(config.outgoing, votes);
  if (incoming === outgoing) return incoming;
  if (incoming === 'lost' || outgoing === 'lost') return 'lost';
  return 'pending';
}
