// Wing & Gong's linearizability search with Lowe's memoization, as popularized by Porcupine:
// walk the time-ordered events; at a call, try to linearize that operation now (if the model
// accepts its output and the (linearized set, state) pair was not explored before); at a return
// whose operation is not linearized yet, backtrack. The memo table makes the search polynomial
// for the histories real systems produce, though the problem is NP-complete in general.

import assert from 'node:assert/strict';
import { Bitset } from './bitset.js';
import { endOfList, EventList } from './events.js';
import { ILLEGAL, type Model, type Operation } from './model.js';

/** How often (in steps) the deadline is compared with the clock: reading it costs more than a
 *  step. */
const stepsPerClockCheck = 1024;

export interface SearchBudget {
  /** performance.now() value after which the search gives up. */
  readonly deadlineMs: number;
  /** Steps left across all partitions; decremented in place. */
  stepsLeft: number;
}

export type PartitionVerdict =
  | { readonly verdict: 'linearizable' }
  | {
      readonly verdict: 'illegal';
      /** Indexes (into the partition) of the longest linearizable prefix found, in order. */
      readonly partialLinearization: readonly number[];
      /** The operation that returned before any linearization could place it. */
      readonly blockedOperation: number;
    }
  | { readonly verdict: 'unknown'; readonly partialLinearization: readonly number[] };

interface MemoEntry<State> {
  readonly words: Uint32Array;
  readonly state: State;
}

export function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  budget: SearchBudget,
): PartitionVerdict {
  const events = new EventList(operations);
  const linearized = new Bitset(operations.length);
  const memo = new Map<number, MemoEntry<State>[]>();
  // The stack of linearized operations: their call events and the state before each.
  const stackEvents: number[] = [];
  const stackStates: State[] = [];
  // Whether each linearized operation was read-only (legal and leaving the state unchanged in
  // every state where it is legal, e.g. a read). Such an operation, once callable and legal, can
  // be linearized first without loss of generality: it changes nothing for the others, and
  // every operation that must precede it in real time is already linearized. So when the
  // search under it fails, no alternative at that level can succeed: backtrack one level more.
  const stackReadOnly: boolean[] = [];
  let longest: number[] = [];
  let blockedOperation = -1;

  const equal = (a: State, b: State): boolean => model.equal(a, b);
  let state = model.init();
  let event = events.first();
  let steps = 0;
  while (!events.isEmpty()) {
    steps++;
    if (steps % stepsPerClockCheck === 0) {
      budget.stepsLeft -= stepsPerClockCheck;
      if (budget.stepsLeft <= 0 || performance.now() > budget.deadlineMs) {
        return { verdict: 'unknown', partialLinearization: longestOf(longest, stackEvents, events) };
      }
    }
    if (events.isCall(event)) {
      const op = events.operationOf[event]!;
      const operation = operations[op]!;
      const next = model.step(state, operation.input, operation.output);
      let configurationFailed = false;
      if (next !== ILLEGAL) {
        const readOnly = model.isReadOnly?.(operation.input, operation.output) === true;
        linearized.set(op);
        const key = memoKey(linearized.hash, model.hash(next));
        if (!memoHas(memo, key, linearized, next, equal)) {
          memoAdd(memo, key, { words: linearized.snapshotWords(), state: next });
          stackEvents.push(event);
          stackStates.push(state);
          stackReadOnly.push(readOnly);
          state = next;
          events.lift(event);
          event = events.first();
          continue;
        }
        linearized.clear(op);
        // Placing a callable read-only operation first loses nothing (see stackReadOnly), so
        // if that was explored and failed, this whole configuration fails.
        configurationFailed = readOnly;
      }
      if (!configurationFailed) {
        event = events.next[event]!;
        continue;
      }
    } else if (stackEvents.length > longest.length || blockedOperation < 0) {
      // A return event whose operation is still unlinearized: nothing before it can be
      // reordered to place it, so undo the most recent choice.
      longest = stackEvents.map((e) => events.operationOf[e]!);
      blockedOperation = events.operationOf[event]!;
    }
    let top: number | undefined;
    let wasReadOnly: boolean;
    do {
      top = stackEvents.pop();
      if (top === undefined) {
        return { verdict: 'illegal', partialLinearization: longest, blockedOperation };
      }
      wasReadOnly = stackReadOnly.pop()!;
      state = stackStates.pop()!;
      linearized.clear(events.operationOf[top]!);
      events.unlift(top);
    } while (wasReadOnly);
    event = events.next[top]!;
    // The call's own return event follows it, so there is always a next event.
    assert.ok(event !== endOfList, 'search invariant: backtracked past the last event');
  }
  budget.stepsLeft -= steps % stepsPerClockCheck;
  return { verdict: 'linearizable' };
}

function longestOf(longest: number[], stackEvents: readonly number[], events: EventList): number[] {
  return stackEvents.length > longest.length ? stackEvents.map((e) => events.operationOf[e]!) : longest;
}

function memoKey(setHash: number, stateHash: number): number {
  return (setHash ^ Math.imul(stateHash | 0, 0x9e3779b1)) >>> 0;
}

function memoHas<State>(
  memo: Map<number, MemoEntry<State>[]>,
  key: number,
  linearized: Bitset,
  state: State,
  equal: (a: State, b: State) => boolean,
): boolean {
  const bucket = memo.get(key);
  if (bucket === undefined) return false;
  for (const entry of bucket) {
    if (linearized.equalsWords(entry.words) && equal(entry.state, state)) return true;
  }
  return false;
}

function memoAdd<State>(memo: Map<number, MemoEntry<State>[]>, key: number, entry: MemoEntry<State>): void {
  const bucket = memo.get(key);
  if (bucket === undefined) memo.set(key, [entry]);
  else bucket.push(entry);
}
