// Callers waiting for an index to be applied on this node (session reads, ReadIndex, If-Match
// on a lagging replica). A min-heap by index makes each advance cost only the waiters it
// wakes, not every waiter; the waiters themselves are one DeadlineWaiters set.
import type { LogIndex } from '../model/ids.js';
import type { Clock } from './clock.js';
import { DeadlineWaiters } from './deadline-waiters.js';

interface HeapItem {
  readonly index: LogIndex;
  readonly key: number;
}

export class IndexWaiters {
  private readonly waiters: DeadlineWaiters<number, void, LogIndex>;
  private readonly heap: HeapItem[] = [];
  private sequence = 0;

  constructor(
    label: string,
    countMax: number,
    clock: Clock,
    /** The index reached so far (read at each wait). */
    private readonly current: () => LogIndex,
  ) {
    this.waiters = new DeadlineWaiters({ label, countMax, clock });
  }

  get size(): number {
    return this.waiters.size;
  }

  /** Resolves once `index` is reached; rejects (unavailable) at the deadline. */
  wait(index: LogIndex, deadlineMs: number): Promise<void> {
    if (index <= this.current()) return Promise.resolve();
    const key = ++this.sequence;
    const waiting = this.waiters.wait(key, deadlineMs, index, () => `index ${index} was not applied on this node within the deadline (applied ${this.current()})`);
    this.push({ index, key });
    return waiting;
  }

  /** Wakes every waiter at or below `index`. */
  advanceTo(index: LogIndex): void {
    while (this.heap.length > 0 && (this.heap[0] as HeapItem).index <= index) {
      const item = this.pop();
      this.waiters.resolve(item.key, undefined); // a no-op for one that already timed out
    }
    // Timed-out waiters leave their heap items behind; drop them once they dominate the heap.
    if (this.heap.length > 2 * this.waiters.size + 64) this.compact();
  }

  rejectAll(error: () => Error): void {
    this.waiters.rejectAll(error);
    this.heap.length = 0;
  }

  private compact(): void {
    const live = this.heap.filter((item) => this.waiters.has(item.key));
    this.heap.length = 0;
    for (const item of live) this.push(item);
  }

  private push(item: HeapItem): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as HeapItem).index <= item.index) break;
      heap[i] = heap[parent] as HeapItem;
      i = parent;
    }
    heap[i] = item;
  }

  private pop(): HeapItem {
    const heap = this.heap;
    const top = heap[0] as HeapItem;
    const last = heap.pop() as HeapItem;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && (heap[right] as HeapItem).index < (heap[left] as HeapItem).index ? right : left;
        if ((heap[child] as HeapItem).index >= last.index) break;
        heap[i] = heap[child] as HeapItem;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
