// The history as one time-ordered, doubly linked list of call and return events. The search
// "lifts" an operation (unlinks its call and return) when it linearizes it and puts it back when
// it backtracks, so the list always holds exactly the operations not yet linearized.

import assert from 'node:assert/strict';
import { UNKNOWN, type Operation } from './model.js';

/** Index of a list node; nodes 0..2n-1 are events, node 2n is the head sentinel. */
type NodeIndex = number;
const nil = -1;

export class EventList {
  /** The head sentinel: `next[head]` is the earliest event still in the list. */
  readonly head: NodeIndex;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Operation index of each event. */
  readonly operationOf: Int32Array;
  /** For a call event, its return event; nil for a return event. */
  readonly returnOf: Int32Array;

  constructor(operations: readonly Operation<unknown, unknown>[]) {
    const count = operations.length;
    const eventCount = 2 * count;
    this.head = eventCount;
    this.next = new Int32Array(eventCount + 1).fill(nil);
    this.prev = new Int32Array(eventCount + 1).fill(nil);
    this.operationOf = new Int32Array(eventCount);
    this.returnOf = new Int32Array(eventCount).fill(nil);

    const times = new Float64Array(eventCount);
    for (let op = 0; op < count; op++) {
      const operation = operations[op]!;
      const returnTime = operation.output === UNKNOWN ? Number.POSITIVE_INFINITY : operation.returnTime;
      assert.ok(Number.isFinite(operation.callTime), `operation ${op}: call time must be finite`);
      assert.ok(
        operation.callTime <= returnTime,
        `operation ${op}: returns (${returnTime}) before it is called (${operation.callTime})`,
      );
      const callEvent = 2 * op;
      const returnEvent = 2 * op + 1;
      this.operationOf[callEvent] = op;
      this.operationOf[returnEvent] = op;
      this.returnOf[callEvent] = returnEvent;
      times[callEvent] = operation.callTime;
      times[returnEvent] = returnTime;
    }
    // Calls sort before returns at the same instant: operations that merely touch are treated
    // as concurrent, the lenient reading when clocks have a coarse resolution (virtual ticks).
    const order = Array.from({ length: eventCount }, (_, i) => i);
    order.sort((a, b) => {
      const byTime = times[a]! - times[b]!;
      if (byTime !== 0 && !Number.isNaN(byTime)) return byTime;
      const aIsCall = (a & 1) === 0;
      const bIsCall = (b & 1) === 0;
      if (aIsCall !== bIsCall) return aIsCall ? -1 : 1;
      return a - b;
    });
    let previous = this.head;
    for (const event of order) {
      this.next[previous] = event;
      this.prev[event] = previous;
      previous = event;
    }
  }

  isCall(event: NodeIndex): boolean {
    return this.returnOf[event] !== nil;
  }

  first(): NodeIndex {
    return this.next[this.head]!;
  }

  isEmpty(): boolean {
    return this.next[this.head] === nil;
  }

  /** Unlink a call event and its return event. */
  lift(callEvent: NodeIndex): void {
    this.unlink(callEvent);
    this.unlink(this.returnOf[callEvent]!);
  }

  /** Undo `lift` (the most recent lift first: relinking relies on neighbours being unchanged). */
  unlift(callEvent: NodeIndex): void {
    this.relink(this.returnOf[callEvent]!);
    this.relink(callEvent);
  }

  private unlink(event: NodeIndex): void {
    const before = this.prev[event]!;
    const after = this.next[event]!;
    this.next[before] = after;
    if (after !== nil) this.prev[after] = before;
  }

  private relink(event: NodeIndex): void {
    const before = this.prev[event]!;
    const after = this.next[event]!;
    this.next[before] = event;
    if (after !== nil) this.prev[after] = event;
  }
}

export const endOfList = nil;
