import { describe, expect, it } from 'vitest';
import { checkKv, UNKNOWN, type KvInput, type KvOperation, type KvOutput, type KvValue } from '../../src/testing/linearizability/index.js';
import { mulberry32 } from './random-history.js';

/** The definition, by exhaustion: some subset of the unknown-outcome operations, in some order
 *  that respects real time (a before b when a returned before b was called), replays legally. */
function bruteForceLinearizable(history: readonly KvOperation[]): boolean {
  const unknown = history.filter((op) => op.output === UNKNOWN);
  const known = history.filter((op) => op.output !== UNKNOWN);
  for (let mask = 0; mask < 1 << unknown.length; mask++) {
    const included = [...known, ...unknown.filter((_, i) => (mask >> i) & 1)];
    if (someOrderReplays(included, [], new Set())) return true;
  }
  return false;
}

function returnTime(op: KvOperation): number {
  return op.output === UNKNOWN ? Number.POSITIVE_INFINITY : op.returnTime;
}

function someOrderReplays(ops: readonly KvOperation[], order: KvOperation[], used: Set<number>): boolean {
  if (order.length === ops.length) return replays(order);
  for (let i = 0; i < ops.length; i++) {
    if (used.has(i)) continue;
    const candidate = ops[i]!;
    // Every unused operation that returned before this one's call must come first.
    const blocked = ops.some((other, j) => j !== i && !used.has(j) && returnTime(other) < candidate.callTime);
    if (blocked) continue;
    used.add(i);
    order.push(candidate);
    if (someOrderReplays(ops, order, used)) return true;
    order.pop();
    used.delete(i);
  }
  return false;
}

function replays(order: readonly KvOperation[]): boolean {
  let value: KvValue = null;
  for (const op of order) {
    const input = op.input;
    const output = op.output;
    if (input.type === 'read') {
      if (output !== UNKNOWN && output.type === 'read' && output.value !== value) return false;
    } else if (input.type === 'write') {
      value = input.value;
    } else {
      const matches = value === input.expected;
      if (output !== UNKNOWN && output.type === 'cas' && output.ok !== matches) return false;
      if (matches) value = input.value;
    }
  }
  return true;
}

function randomSmallHistory(seed: number): KvOperation[] {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const values = ['a', 'b', 'c'];
  const count = 2 + Math.floor(random() * 6);
  const history: KvOperation[] = [];
  for (let i = 0; i < count; i++) {
    const callTime = Math.floor(random() * 10);
    const returnTime = callTime + Math.floor(random() * 5);
    const kind = random();
    let input: KvInput;
    let output: KvOutput;
    if (kind < 0.4) {
      input = { type: 'read', key: 'x' };
      output = { type: 'read', value: pick([null, ...values]) };
    } else if (kind < 0.7) {
      input = { type: 'write', key: 'x', value: pick(values) };
      output = { type: 'write' };
    } else {
      input = { type: 'cas', key: 'x', expected: pick([null, ...values]), value: pick(values) };
      output = { type: 'cas', ok: random() < 0.5 };
    }
    const unknown = input.type !== 'read' && random() < 0.2;
    history.push({ clientId: i, input, callTime, returnTime, output: unknown ? UNKNOWN : output });
  }
  return history;
}

describe('checkKv agrees with exhaustive search on small random histories', () => {
  it('gives the same verdict on 3000 histories of up to 7 operations', () => {
    let linearizable = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const history = randomSmallHistory(seed);
      const expected = bruteForceLinearizable(history);
      const result = checkKv(history);
      expect(result.verdict, `seed ${seed}: ${JSON.stringify(history)}`).toBe(expected ? 'linearizable' : 'illegal');
      if (expected) linearizable++;
    }
    // Both verdicts must be well represented, or the comparison proves little.
    expect(linearizable).toBeGreaterThan(300);
    expect(linearizable).toBeLessThan(2700);
  });
});
