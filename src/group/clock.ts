// Time as the group host sees it. Production passes the system clock; the simulator passes a
// virtual one, so that the host's timers and deferred work run deterministically from a seed.

/** A pending one-shot timer. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic-enough wall clock (deadlines are absolute values of it). */
  nowMs(): number;
  /** Runs `callback` once after `delayMs`. */
  setTimer(callback: () => void, delayMs: number): Timer;
  /** Runs `callback` after the work of the current turn (I/O callbacks first). */
  defer(callback: () => void): void;
  /** A uniformly distributed number in [0, 1): election jitter, proposal keys. */
  random(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimer: (callback, delayMs) => {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  },
  defer: (callback) => {
    setImmediate(callback);
  },
  random: () => Math.random(),
};
