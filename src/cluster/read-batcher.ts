// Batches linearizable read points. A ReadIndex round costs a heartbeat round trip to a quorum
// (or an RPC to the leader): instead of one round per read, every read that arrives while a
// round is in flight waits for the next round, and that one round answers all of them.
// Linearizable still: each read's round starts after the read arrived, so its read point is at
// least every write acknowledged before the read began.
import type { LogIndex } from '../state/entries.js';
import { ClusterUnavailableError } from './group-transport.js';

/** Reads waiting for one round, at most: more are refused rather than queued without bound. */
export const readBatchMax = 50_000;

interface Waiter {
  readonly resolve: (index: LogIndex) => void;
  readonly reject: (error: Error) => void;
  readonly deadline: number;
  settled: boolean;
  timer?: NodeJS.Timeout;
}

export class ReadIndexBatcher {
  private next: Waiter[] = [];
  /** The reads of the round in flight, if one is. */
  private inFlight: Waiter[] | undefined;

  /** `round(deadline)` obtains one read point, or rejects by the deadline (absolute ms). */
  constructor(private readonly round: (deadline: number) => Promise<LogIndex>) {}

  read(deadline: number): Promise<LogIndex> {
    if (this.next.length >= readBatchMax) return Promise.reject(new ClusterUnavailableError('too many reads waiting'));
    return new Promise<LogIndex>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, deadline, settled: false };
      waiter.timer = setTimeout(() => settle(waiter, new ClusterUnavailableError('read index not confirmed by a quorum within the deadline')), Math.max(1, deadline - Date.now()));
      this.next.push(waiter);
      this.startRound();
    });
  }

  /** Fails every read, waiting or in the round in flight (leader changed, shutdown). The
   *  abandoned round's outcome is ignored and the next read starts a new round at once: a round
   *  sent to a leader that is gone would otherwise hold every later read until its deadline. */
  failAll(error: Error): void {
    for (const waiter of this.next) settle(waiter, error);
    this.next = [];
    for (const waiter of this.inFlight ?? []) settle(waiter, error);
    this.inFlight = undefined;
  }

  private startRound(): void {
    if (this.inFlight !== undefined) return;
    const batch = this.next.filter((waiter) => !waiter.settled);
    this.next = [];
    if (batch.length === 0) return;
    this.inFlight = batch;
    const deadline = Math.max(...batch.map((waiter) => waiter.deadline));
    this.round(deadline).then(
      (index) => {
        for (const waiter of batch) settle(waiter, undefined, index);
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const waiter of batch) settle(waiter, failure);
      },
    ).finally(() => {
      if (this.inFlight !== batch) return; // abandoned by failAll; a later round may be in flight
      this.inFlight = undefined;
      this.startRound();
    });
  }
}

function settle(waiter: Waiter, error: Error | undefined, index?: LogIndex): void {
  if (waiter.settled) return;
  waiter.settled = true;
  if (waiter.timer !== undefined) clearTimeout(waiter.timer);
  if (error !== undefined) waiter.reject(error);
  else waiter.resolve(index as LogIndex);
}
