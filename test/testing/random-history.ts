// Histories that are linearizable by construction: run operations sequentially against a map,
// give each a linearization point on a time line, then widen every point into an interval with
// random jitter so that neighbours overlap. The point stays inside the interval, so the
// sequential order is a witness linearization.

import { UNKNOWN, type KvInput, type KvOperation, type KvOutput, type KvValue } from '../../src/testing/linearizability/index.js';

/** A tiny seeded generator (mulberry32) so a failing history can be rebuilt from its seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomHistoryOptions {
  readonly seed: number;
  readonly operationCount: number;
  readonly keyCount: number;
  readonly clientCount: number;
  /** Distance between consecutive linearization points. */
  readonly spacing: number;
  /** Each side of an interval extends up to this far from its point. */
  readonly jitterMax: number;
  /** Fraction of operations whose client times out (outcome unknown). */
  readonly unknownFraction: number;
}

export function randomLinearizableHistory(options: RandomHistoryOptions): KvOperation[] {
  const random = mulberry32(options.seed);
  const pick = (n: number): number => Math.floor(random() * n);
  const store = new Map<string, KvValue>();
  const history: KvOperation[] = [];
  for (let i = 0; i < options.operationCount; i++) {
    const key = `k${pick(options.keyCount)}`;
    const current = store.get(key) ?? null;
    const point = i * options.spacing;
    const kind = random();
    let input: KvInput;
    let output: KvOutput;
    if (kind < 0.45) {
      input = { type: 'read', key };
      output = { type: 'read', value: current };
    } else if (kind < 0.8) {
      const value = `v${i}`;
      input = { type: 'write', key, value };
      output = { type: 'write' };
    } else {
      // Half the CASes expect the current value (succeed), half a stale one (fail).
      const expected = random() < 0.5 ? current : `v${pick(i + 1)}`;
      const value = `v${i}`;
      input = { type: 'cas', key, expected, value };
      output = { type: 'cas', ok: expected === current };
    }
    const timesOut = random() < options.unknownFraction;
    // A timed-out operation takes effect or not, at random; either way the history stays
    // linearizable.
    const takesEffect = !timesOut || random() < 0.5;
    if (takesEffect) {
      if (input.type === 'write') store.set(key, input.value);
      if (input.type === 'cas' && output.type === 'cas' && output.ok) store.set(key, input.value);
    }
    if (timesOut && !takesEffect && input.type === 'read') continue;
    history.push({
      clientId: pick(options.clientCount),
      input,
      callTime: point - random() * options.jitterMax,
      returnTime: point + random() * options.jitterMax,
      output: timesOut ? UNKNOWN : output,
    });
  }
  // Clients submit in call order; shuffle so the checker cannot rely on the input order.
  for (let i = history.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [history[i], history[j]] = [history[j]!, history[i]!];
  }
  return history;
}
