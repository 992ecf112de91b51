// Raft's safety properties, checked while the simulation runs rather than only at the end, so a
// violation is reported at the step that caused it. Each check names the property from the Raft
// paper (Figure 3) or the host contract it guards.

import { NONE, type Entry, type HardState, type LogIndex, type Message, type NodeId, type Storage, type Term } from '../../src/raft/types.js';
import { BOOTSTRAP_INDEX } from '../../src/raft/index.js';
import type { PersistedWrite } from './group-storage.js';

export class SafetyViolation extends Error {
  constructor(readonly property: string, detail: string) {
    super(`${property}: ${detail}`);
  }
}

/** Identity of an entry for comparisons: same term, same kind, same bytes. */
export function entryDigest(entry: Entry): string {
  let hash = 0x811c9dc5;
  const data = entry.data;
  for (let i = 0; i < data.length; i++) hash = Math.imul(hash ^ data[i]!, 0x01000193);
  return `${entry.term}/${entry.type}/${data.length}/${(hash >>> 0).toString(16)}`;
}

/** Reading a whole persisted log at once: the byte limit is irrelevant in the simulator. */
const entriesBytesMax = Number.MAX_SAFE_INTEGER;

export class InvariantChecker {
  private readonly leaderByTerm = new Map<Term, NodeId>();
  /** Digest of the entry committed at each index, as first observed by any node. */
  private readonly committedDigests = new Map<LogIndex, string>();
  private readonly committedTerms = new Map<LogIndex, Term>();
  /** The term of the node that first saw each index committed: at least the commit's term. */
  private readonly commitObservedInTerm = new Map<LogIndex, Term>();
  /** Election Safety's corollary used by Log Matching: (index, term) identifies one entry. */
  private readonly digestByIndexTerm = new Map<string, string>();
  private readonly persistedHardState = new Map<NodeId, HardState>();
  /** Highest commit index each node recorded committed digests up to. */
  private readonly committedRecordedUpTo = new Map<NodeId, LogIndex>();
  /** Commit index of each live incarnation: it must never decrease while the node runs. */
  private readonly liveCommit = new Map<NodeId, LogIndex>();
  private readonly lastApplied = new Map<NodeId, LogIndex>();
  /** Highest index known committed anywhere. */
  committedIndexMax = 0;
  appliedEntryCount = 0;

  constructor(
    /** Off only to see what a broken host's messages lead to (sim.test.ts, the lying disk). */
    private readonly checkSentMessages = true,
  ) {}

  /** Election Safety: at most one leader can be elected in a given term. */
  onLeader(nodeId: NodeId, term: Term): void {
    const existing = this.leaderByTerm.get(term);
    if (existing !== undefined && existing !== nodeId) {
      throw new SafetyViolation('election safety', `${existing} and ${nodeId} are both leader in term ${term}`);
    }
    this.leaderByTerm.set(term, nodeId);
  }

  get leaderTermCount(): number {
    return this.leaderByTerm.size;
  }

  /** A write of the node's snapshot, entries and hard state is durable; `storage` is the node's
   *  log as it is on disk now. */
  onPersisted(nodeId: NodeId, write: PersistedWrite, storage: Storage): void {
    const ownCommit = this.persistedHardState.get(nodeId)?.commit ?? 0;
    if (write.snapshot !== undefined) {
      const { index, term } = write.snapshot;
      const committedTerm = this.committedTerms.get(index);
      if (committedTerm !== undefined && committedTerm !== term) {
        throw new SafetyViolation(
          'state machine safety',
          `${nodeId} installed a snapshot at ${index} with term ${term}, committed term there is ${committedTerm}`,
        );
      }
      this.committedRecordedUpTo.set(nodeId, Math.max(this.committedRecordedUpTo.get(nodeId) ?? 0, index));
    }
    for (const entry of write.entries) {
      const digest = entryDigest(entry);
      const key = `${entry.index}:${entry.term}`;
      const seen = this.digestByIndexTerm.get(key);
      if (seen === undefined) this.digestByIndexTerm.set(key, digest);
      else if (seen !== digest) {
        throw new SafetyViolation('log matching', `two different entries at index ${entry.index} term ${entry.term} (${seen} vs ${digest}, persisted by ${nodeId})`);
      }
      // A node may hold a divergent, uncommitted suffix (a deposed leader appending to its own
      // log, a follower that followed it) even at an index committed elsewhere; it must never
      // replace an entry that it already knows to be committed itself.
      const committed = this.committedDigests.get(entry.index);
      if (entry.index <= ownCommit && committed !== undefined && committed !== digest) {
        throw new SafetyViolation(
          'state machine safety',
          `${nodeId} persisted ${digest} at index ${entry.index} over the entry ${committed} committed there (its commit is ${ownCommit})`,
        );
      }
    }
    if (write.hardState !== undefined) this.onHardStatePersisted(nodeId, write.hardState);
    this.recordCommitted(nodeId, storage);
    // Only the leader of a term creates entries of that term: a node persisting entries of a
    // term it led is a leader persisting its own entries (perhaps durable only after it stepped
    // down: what it inherited is on its disk all the same).
    for (const term of new Set(write.entries.map((entry) => entry.term))) {
      if (this.leaderByTerm.get(term) === nodeId) this.checkLeaderCompleteness(nodeId, term, storage);
    }
  }

  /** Leader Completeness: an entry committed in term T is in the log of every leader of a term
   *  after T. Checked when a leader persists entries of its own term (by then, everything it
   *  inherited is on its disk). Uses the term in which the commit was first observed, which is
   *  at least the term it was committed in, so the check never fires wrongly. */
  private checkLeaderCompleteness(nodeId: NodeId, leaderTerm: Term, storage: Storage): void {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    for (const [index, observedTerm] of this.commitObservedInTerm) {
      if (observedTerm >= leaderTerm || index < first) continue;
      const committed = this.committedDigests.get(index)!;
      if (index > last) {
        throw new SafetyViolation('leader completeness', `leader ${nodeId} of term ${leaderTerm} lacks committed index ${index} (log ends at ${last})`);
      }
      const [entry] = storage.entries(index, index + 1, entriesBytesMax);
      const digest = entryDigest(entry!);
      if (digest !== committed) {
        throw new SafetyViolation(
          'leader completeness',
          `leader ${nodeId} of term ${leaderTerm} has ${digest} at index ${index}, committed there is ${committed} (committed by term ${observedTerm})`,
        );
      }
    }
  }

  private onHardStatePersisted(nodeId: NodeId, hardState: HardState): void {
    const previous = this.persistedHardState.get(nodeId);
    if (previous !== undefined) {
      if (hardState.term < previous.term) {
        throw new SafetyViolation('durable term', `${nodeId} persisted term ${hardState.term} after ${previous.term}`);
      }
      if (hardState.term === previous.term && previous.vote !== NONE && hardState.vote !== previous.vote) {
        throw new SafetyViolation(
          'durable vote',
          `${nodeId} changed its vote in term ${hardState.term} from ${previous.vote} to ${hardState.vote || 'none'}`,
        );
      }
      if (hardState.commit < previous.commit) {
        throw new SafetyViolation('durable commit', `${nodeId} persisted commit ${hardState.commit} after ${previous.commit}`);
      }
    }
    this.persistedHardState.set(nodeId, hardState);
  }

  /** Record (or compare) the digests of entries that the node's persisted commit index covers. */
  private recordCommitted(nodeId: NodeId, storage: Storage): void {
    const commit = this.persistedHardState.get(nodeId)?.commit ?? 0;
    const recorded = this.committedRecordedUpTo.get(nodeId) ?? 0;
    if (commit <= recorded) return;
    const lastIndex = storage.lastIndex();
    if (lastIndex < commit) {
      throw new SafetyViolation('committed entries persist', `${nodeId} has commit ${commit} but its log ends at ${lastIndex}`);
    }
    const lo = Math.max(recorded + 1, storage.firstIndex());
    if (lo <= commit) {
      const term = this.persistedHardState.get(nodeId)?.term ?? 0;
      for (const entry of storage.entries(lo, commit + 1, entriesBytesMax)) this.checkCommitted(nodeId, entry, term);
    }
    this.committedRecordedUpTo.set(nodeId, commit);
    this.committedIndexMax = Math.max(this.committedIndexMax, commit);
  }

  private checkCommitted(nodeId: NodeId, entry: Entry, observerTerm: Term): void {
    const digest = entryDigest(entry);
    const committed = this.committedDigests.get(entry.index);
    if (committed === undefined) {
      this.committedDigests.set(entry.index, digest);
      this.committedTerms.set(entry.index, entry.term);
      this.commitObservedInTerm.set(entry.index, observerTerm);
    } else if (committed !== digest) {
      throw new SafetyViolation(
        'state machine safety',
        `${nodeId} has ${digest} committed at index ${entry.index}, another node committed ${committed}`,
      );
    }
  }

  /**
   * The host contract behind pipelined writes (group/ready-loop.ts): a message never vouches
   * for state a crash could still lose. Checked against the sender's disk as the message leaves:
   * a granted vote is on disk, an append acknowledgement's entries are, and a leader's commit
   * field is backed by its own durable log. (A later durable term supersedes all three: the
   * state they vouched for may have been replaced since, legitimately.)
   */
  onSent(nodeId: NodeId, message: Message, disk: Storage): void {
    if (!this.checkSentMessages) return;
    const durable = disk.initialState().hardState;
    if (durable.term > message.term) return;
    if (message.type === 'voteResp' && !message.reject && !(durable.term === message.term && durable.vote === message.to)) {
      throw new SafetyViolation(
        'durable before sent',
        `${nodeId} granted its vote to ${message.to} in term ${message.term} with term ${durable.term} vote ${durable.vote || 'none'} on disk`,
      );
    }
    if (message.type === 'appResp' && !message.reject && message.index > disk.lastIndex()) {
      throw new SafetyViolation('durable before sent', `${nodeId} acknowledged entries up to ${message.index} to ${message.to} with ${disk.lastIndex()} on disk`);
    }
    if ((message.type === 'app' || message.type === 'heartbeat') && message.commit > disk.lastIndex()) {
      throw new SafetyViolation('durable before sent', `${nodeId} sent commit ${message.commit} to ${message.to} with its log on disk ending at ${disk.lastIndex()}`);
    }
  }

  /** The snapshot a node's log starts from (as the running storage or the disk says) must be
   *  on its disk: it is what the node sends a follower that needs entries before its log. */
  checkSnapshotKept(nodeId: NodeId, snapshotIndex: LogIndex, hasFile: boolean): void {
    if (snapshotIndex <= BOOTSTRAP_INDEX || hasFile) return;
    throw new SafetyViolation('snapshot file kept', `${nodeId}'s log starts after the snapshot at ${snapshotIndex}, whose file is gone`);
  }

  /** A live node recorded a commit index (a Ready's hard state, durable or not yet). */
  onCommit(nodeId: NodeId, commit: LogIndex): void {
    const previous = this.liveCommit.get(nodeId) ?? 0;
    if (commit < previous) {
      throw new SafetyViolation('monotonic commit', `${nodeId} commit went from ${previous} to ${commit} while running`);
    }
    this.liveCommit.set(nodeId, commit);
  }

  /** The node applied `entry` to its state machine. */
  onApplied(nodeId: NodeId, entry: Entry, nodeTerm: Term): void {
    const lastApplied = this.lastApplied.get(nodeId) ?? 0;
    if (entry.index !== lastApplied + 1) {
      throw new SafetyViolation('applied in order', `${nodeId} applied index ${entry.index} after ${lastApplied}`);
    }
    const commit = this.liveCommit.get(nodeId) ?? 0;
    if (entry.index > commit) {
      throw new SafetyViolation('apply only committed', `${nodeId} applied index ${entry.index} beyond its commit ${commit}`);
    }
    this.lastApplied.set(nodeId, entry.index);
    this.appliedEntryCount++;
    this.checkCommitted(nodeId, entry, nodeTerm);
    this.committedIndexMax = Math.max(this.committedIndexMax, entry.index);
  }

  /** The node's state machine was replaced by a snapshot taken at `index`. */
  onSnapshotRestored(nodeId: NodeId, index: LogIndex, term: Term): void {
    const committedTerm = this.committedTerms.get(index);
    if (committedTerm !== undefined && committedTerm !== term) {
      throw new SafetyViolation('state machine safety', `${nodeId} restored a snapshot at ${index} of term ${term}; committed term is ${committedTerm}`);
    }
    const lastApplied = this.lastApplied.get(nodeId) ?? 0;
    if (index < lastApplied && this.liveCommit.has(nodeId)) {
      throw new SafetyViolation('applied in order', `${nodeId} was handed a snapshot at ${index} after applying ${lastApplied}`);
    }
    this.lastApplied.set(nodeId, index);
  }

  /** A node crashed: its volatile state is gone. */
  onCrash(nodeId: NodeId): void {
    this.liveCommit.delete(nodeId);
  }

  /** A node restarted from its persisted state: the core must resume from exactly that state. */
  onRestart(nodeId: NodeId, coreHardState: HardState, appliedIndex: LogIndex): void {
    const persisted = this.persistedHardState.get(nodeId);
    if (persisted !== undefined) {
      if (coreHardState.term !== persisted.term || coreHardState.vote !== persisted.vote) {
        throw new SafetyViolation(
          'durable term and vote',
          `${nodeId} restarted with term ${coreHardState.term} vote ${coreHardState.vote || 'none'}, persisted term ${persisted.term} vote ${persisted.vote || 'none'}`,
        );
      }
      if (coreHardState.commit < persisted.commit) {
        throw new SafetyViolation('durable commit', `${nodeId} restarted with commit ${coreHardState.commit} < persisted ${persisted.commit}`);
      }
    }
    this.liveCommit.set(nodeId, coreHardState.commit);
    this.lastApplied.set(nodeId, appliedIndex);
  }

  /** Log Matching across every pair of persisted logs: if two logs hold an entry with the same
   *  index and term, they are identical in all entries up to that index. */
  checkLogMatching(logs: ReadonlyMap<NodeId, Storage>): void {
    const views = [...logs.entries()].map(([nodeId, storage]) => {
      const first = storage.firstIndex();
      const last = storage.lastIndex();
      const entries = first <= last ? storage.entries(first, last + 1, entriesBytesMax) : [];
      return { nodeId, first, entries };
    });
    for (let a = 0; a < views.length; a++) {
      for (let b = a + 1; b < views.length; b++) {
        const left = views[a]!;
        const right = views[b]!;
        const lo = Math.max(left.first, right.first);
        const hi = Math.min(left.first + left.entries.length, right.first + right.entries.length) - 1;
        // The highest index in the overlap where both logs agree on the term.
        let matchIndex = -1;
        for (let index = hi; index >= lo; index--) {
          if (left.entries[index - left.first]!.term === right.entries[index - right.first]!.term) {
            matchIndex = index;
            break;
          }
        }
        for (let index = lo; index <= matchIndex; index++) {
          const l = entryDigest(left.entries[index - left.first]!);
          const r = entryDigest(right.entries[index - right.first]!);
          if (l !== r) {
            throw new SafetyViolation(
              'log matching',
              `${left.nodeId} and ${right.nodeId} agree on the term at ${matchIndex} but differ at ${index} (${l} vs ${r})`,
            );
          }
        }
      }
    }
  }
}
