// The vocabulary of the linearizability checker: a sequential specification (a Model) and the
// concurrent history to check against it (Operations with real-time intervals).

/** Who issued an operation; only used to describe a failure. */
export type ClientId = string | number;

/** The outcome of an operation whose client never heard back (timeout, lost connection): it may
 *  have taken effect at any time after its call, or never. Its return time counts as +infinity. */
export const UNKNOWN = 'unknown';
export type Unknown = typeof UNKNOWN;

export interface Operation<Input, Output> {
  readonly clientId: ClientId;
  readonly input: Input;
  /** When the client invoked the operation (any monotonic clock shared by all clients). */
  readonly callTime: number;
  /** When the client received the response. Ignored (treated as +infinity) when `output` is
   *  UNKNOWN. */
  readonly returnTime: number;
  readonly output: Output | Unknown;
}

/** Returned by Model.step when the operation cannot have produced its output in that state. */
export const ILLEGAL: unique symbol = Symbol('illegal');
export type Illegal = typeof ILLEGAL;

/**
 * A deterministic sequential specification. `step` must not mutate `state`: the search keeps old
 * states to backtrack to and memoizes them.
 */
export interface Model<State, Input, Output> {
  init(): State;
  /** The state after applying `input` in `state`, if that can produce `output`; ILLEGAL otherwise.
   *  For an UNKNOWN output, return the state the operation leads to when it does take effect
   *  (taking no effect is covered by the checker, which may linearize it after everything else). */
  step(state: State, input: Input, output: Output | Unknown): State | Illegal;
  equal(a: State, b: State): boolean;
  /** Any 32-bit hash consistent with `equal`. */
  hash(state: State): number;
  /** True if the operation, with this output, never changes the state wherever it is legal
   *  (a read; a CAS known to have failed). Lets the search skip orderings that cannot matter.
   *  Must be false for an UNKNOWN output. Omitted: no operation is read-only. */
  isReadOnly?(input: Input, output: Output | Unknown): boolean;
  /** Split a history into independent sub-histories (e.g. one per key) checked separately; a
   *  history is linearizable iff every part is. Omitted: the history is one part. */
  partition?(operations: readonly Operation<Input, Output>[]): Map<string, Operation<Input, Output>[]>;
  /** A one-line rendering of an operation for failure reports. */
  describe?(operation: Operation<Input, Output>): string;
}
