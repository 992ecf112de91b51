// What a leader knows about one follower's log, and how it sends to it:
//  - probe: one append per heartbeat interval until the follower's match index is found;
//  - replicate: pipelined appends, bounded by Inflights;
//  - snapshot: the follower needs a snapshot; nothing else is sent until it is reported.
import { Inflights } from './inflights.js';
import type { LogIndex } from './types.js';
import { assert } from './util.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match: LogIndex;
  /** Next index to send. Invariant: match < next. */
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: LogIndex = 0;
  /** Heard from since the last CheckQuorum round (true for self and for new members). */
  recentActive: boolean;
  /** Stops further appends until an acknowledgement or heartbeat response arrives. */
  msgAppFlowPaused = false;
  inflights: Inflights;
  isLearner: boolean;

  constructor(init: { match: LogIndex; next: LogIndex; inflights: Inflights; isLearner: boolean; recentActive: boolean }) {
    this.match = init.match;
    this.next = init.next;
    this.inflights = init.inflights;
    this.isLearner = init.isLearner;
    this.recentActive = init.recentActive;
  }

  /** A copy for a configuration change under construction (which may still be rejected). */
  clone(): Progress {
    const copy = new Progress({
      match: this.match,
      next: this.next,
      inflights: this.inflights.clone(),
      isLearner: this.isLearner,
      recentActive: this.recentActive,
    });
    copy.state = this.state;
    copy.pendingSnapshot = this.pendingSnapshot;
    copy.msgAppFlowPaused = this.msgAppFlowPaused;
    return copy;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // After a snapshot the follower has at least the snapshot's index (if it was applied);
      // probing from there saves a round trip.
      const pendingSnapshot = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** Bookkeeping after sending an append of `entries` entries (`bytes` payload) to the follower. */
  sentEntries(entries: number, bytes: number): void {
    switch (this.state) {
      case 'replicate':
        if (entries > 0) {
          this.next += entries;
          this.inflights.add(this.next - 1, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        break;
      case 'probe':
        // One probe in flight at a time; a heartbeat response re-opens the flow.
        if (entries > 0) this.msgAppFlowPaused = true;
        break;
      case 'snapshot':
        assert(false, 'sending entries to a follower in snapshot state');
    }
  }

  /** An acknowledgement of `index`. Returns whether it raised match (not stale). */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append at `rejected`, with the follower's hint of its last possibly
   * matching index. Returns false if the rejection is stale (answers an older probe).
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      // Pipelined appends after the rejected one will fail too; restart from match.
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether the leader must hold appends to this follower for now. */
  isPaused(): boolean {
    return this.state === 'snapshot' || this.msgAppFlowPaused;
  }
}
