// Batches linearizable read points. A ReadIndex round costs a heartbeat round trip to a quorum
// (or an RPC to the leader): instead of one round per read, every read that arrives while a
// round is in flight waits for the next round, and that one round answers all of them.
// Linearizable still: each read's round starts after the read arrived, so its read point is at
// least every write acknowledged before the read began.
import type { LogIndex } from '../model/ids.js';
import type { Clock } from './clock.js';
import { DeadlineWaiters } from './deadline-waiters.js';

/** Reads waiting for one round, at most: more are refused rather than queued without bound. */
export const readBatchCountMax = 50_000;

export class ReadIndexBatcher {
  private readonly waiters: DeadlineWaiters<number, LogIndex, number>;
  /** Keys of the reads that wait for the next round, in arrival order. */
  private next: number[] = [];
  private sequence = 0;
  /** The reads of the round in flight, if one is. */
  private inFlight: number[] | undefined;

  /** `round(deadline)` obtains one read point, or rejects by the deadline (absolute ms). */
  constructor(
    private readonly round: (deadlineMs: number) => Promise<LogIndex>,
    clock: Clock,
  ) {
    this.waiters = new DeadlineWaiters({ label: 'reads', countMax: readBatchCountMax, clock });
  }

  read(deadlineMs: number): Promise<LogIndex> {
    const key = ++this.sequence;
    const waiting = this.waiters.wait(key, deadlineMs, deadlineMs, () => 'read index not confirmed by a quorum within the deadline');
    if (this.waiters.has(key)) {
      this.next.push(key);
      this.startRound();
    }
    return waiting;
  }

  /** Fails every read, waiting or in the round in flight (leader changed, shutdown). The
   *  abandoned round's outcome is ignored and the next read starts a new round at once: a round
   *  sent to a leader that is gone would otherwise hold every later read until its deadline. */
  failAll(error: () => Error): void {
    this.waiters.rejectAll(error);
    this.next = [];
    this.inFlight = undefined;
  }

  private startRound(): void {
    if (this.inFlight !== undefined) return;
    const batch = this.next.filter((key) => this.waiters.has(key));
    this.next = [];
    if (batch.length === 0) return;
    this.inFlight = batch;
    let deadlineMs = 0;
    for (const key of batch) deadlineMs = Math.max(deadlineMs, this.waiters.metaOf(key) ?? 0);
    this.round(deadlineMs)
      .then(
        (index) => {
          for (const key of batch) this.waiters.resolve(key, index);
        },
        (error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const key of batch) this.waiters.reject(key, failure);
        },
      )
      .finally(() => {
        if (this.inFlight !== batch) return; // abandoned by failAll; a later round may be in flight
        this.inFlight = undefined;
        this.startRound();
      });
  }
}
