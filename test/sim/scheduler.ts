// Virtual time. Everything that happens "later" (a message arriving, a client's reply, a node
// restarting) is an event in one queue ordered by (time, insertion order), so that runs are
// reproducible: two events at the same instant always fire in the order they were scheduled.

export type VirtualMs = number;

interface ScheduledEvent {
  readonly at: VirtualMs;
  readonly order: number;
  readonly run: () => void;
}

/** A bound on queued events: a run that schedules more is broken (e.g. a message storm). */
const queuedEventsMax = 1_000_000;

export class Scheduler {
  now: VirtualMs = 0;
  /** Events run so far: unchanged while the promise jobs of one event run. */
  eventsRun = 0;
  private readonly heap: ScheduledEvent[] = [];
  private scheduledCount = 0;

  schedule(delayMs: VirtualMs, run: () => void): void {
    if (this.heap.length >= queuedEventsMax) {
      throw new Error(`scheduler: more than ${queuedEventsMax} pending events`);
    }
    this.push({ at: this.now + Math.max(0, delayMs), order: this.scheduledCount++, run });
  }

  /** Run every event due at or before `now`, including those they schedule for `now`. */
  runDue(): void {
    while (this.runNextDue());
  }

  /** Run the next event due at or before `now`, if any; says whether one ran. The caller lets
   *  the promise jobs it started run before the next one (one turn of the event loop each). */
  runNextDue(): boolean {
    if (this.heap.length === 0 || this.heap[0]!.at > this.now) return false;
    this.eventsRun++;
    this.pop().run();
    return true;
  }

  get pendingCount(): number {
    return this.heap.length;
  }

  private before(a: ScheduledEvent, b: ScheduledEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private push(event: ScheduledEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): ScheduledEvent {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}
