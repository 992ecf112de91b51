// The one way a request waits inside the group host: a bounded set of waiters, each with an
// absolute deadline, settled by key or by predicate. Proposals waiting for their entry, reads
// waiting for a quorum round, callers waiting for a leader or for an applied index all use it,
// so every wait has a deadline and every set of waiters has a size limit.
import type { Clock, Timer } from './clock.js';
import { GroupUnavailableError } from './errors.js';

interface Waiting<V, M> {
  readonly resolve: (value: V) => void;
  readonly reject: (error: Error) => void;
  readonly timer: Timer;
  readonly meta: M;
}

export interface DeadlineWaitersOptions {
  /** What waits here, for error messages ("proposals", "reads"). */
  readonly label: string;
  readonly countMax: number;
  readonly clock: Clock;
}

export class DeadlineWaiters<K, V, M = undefined> {
  private readonly waiting = new Map<K, Waiting<V, M>>();

  constructor(private readonly options: DeadlineWaitersOptions) {}

  get size(): number {
    return this.waiting.size;
  }

  has(key: K): boolean {
    return this.waiting.has(key);
  }

  /** The metadata a waiter was added with, while it waits. */
  metaOf(key: K): M | undefined {
    return this.waiting.get(key)?.meta;
  }

  /**
   * Waits under `key` until settled or until `deadlineMs` (absolute, clock time), when it
   * fails with `timeoutDetail`. Refused at once, without waiting, when the set is full.
   */
  wait(key: K, deadlineMs: number, meta: M, timeoutDetail: () => string): Promise<V> {
    if (this.waiting.has(key)) return Promise.reject(new Error(`${this.options.label}: key ${String(key)} is already waiting`));
    if (this.waiting.size >= this.options.countMax) {
      return Promise.reject(new GroupUnavailableError(`too many ${this.options.label} waiting (${this.options.countMax})`));
    }
    return new Promise<V>((resolve, reject) => {
      const timer = this.options.clock.setTimer(() => {
        if (this.waiting.get(key)?.timer !== timer) return;
        this.waiting.delete(key);
        reject(new GroupUnavailableError(timeoutDetail()));
      }, deadlineMs - this.options.clock.nowMs());
      this.waiting.set(key, { resolve, reject, timer, meta });
    });
  }

  resolve(key: K, value: V): boolean {
    const waiting = this.take(key);
    waiting?.resolve(value);
    return waiting !== undefined;
  }

  reject(key: K, error: Error): boolean {
    const waiting = this.take(key);
    waiting?.reject(error);
    return waiting !== undefined;
  }

  /** Rejects every waiter whose metadata matches; returns how many. */
  rejectWhere(predicate: (meta: M, key: K) => boolean, error: () => Error): number {
    let count = 0;
    for (const [key, waiting] of [...this.waiting]) {
      if (!predicate(waiting.meta, key)) continue;
      this.take(key);
      waiting.reject(error());
      count++;
    }
    return count;
  }

  /** Resolves every waiter whose metadata matches; returns how many. */
  resolveWhere(predicate: (meta: M, key: K) => boolean, value: V): number {
    let count = 0;
    for (const [key, waiting] of [...this.waiting]) {
      if (!predicate(waiting.meta, key)) continue;
      this.take(key);
      waiting.resolve(value);
      count++;
    }
    return count;
  }

  rejectAll(error: () => Error): void {
    this.rejectWhere(() => true, error);
  }

  private take(key: K): Waiting<V, M> | undefined {
    const waiting = this.waiting.get(key);
    if (waiting === undefined) return undefined;
    this.waiting.delete(key);
    waiting.timer.cancel();
    return waiting;
  }
}
