import { describe, expect, it } from 'vitest';
import {
  checkKv,
  checkOperations,
  ILLEGAL,
  UNKNOWN,
  type KvOperation,
  type Model,
  type Operation,
} from '../../src/testing/linearizability/index.js';
import { cas, read, timedOut, write } from './history-builders.js';
import { mulberry32, randomLinearizableHistory } from './random-history.js';

function expectLinearizable(history: KvOperation[]): void {
  const result = checkKv(history);
  expect(result.ok ? 'linearizable' : `${result.verdict}: ${result.reason}`).toBe('linearizable');
}

function expectIllegal(history: KvOperation[], key = 'x'): void {
  const result = checkKv(history);
  expect(result.verdict).toBe('illegal');
  if (!result.ok) expect(result.key).toBe(key);
}

describe('checkKv: linearizable histories', () => {
  it('accepts the empty history and a sequential one', () => {
    expectLinearizable([]);
    expectLinearizable([write('x', 'a', 0, 1), read('x', 'a', 2, 3), cas('x', 'a', 'b', true, 4, 5), read('x', 'b', 6, 7)]);
  });

  it('reads null before the first write', () => {
    expectLinearizable([read('x', null, 0, 1), write('x', 'a', 2, 3)]);
  });

  it('accepts a read concurrent with a write seeing either value', () => {
    expectLinearizable([write('x', 'a', 0, 1), write('x', 'b', 2, 10), read('x', 'a', 3, 4)]);
    expectLinearizable([write('x', 'a', 0, 1), write('x', 'b', 2, 10), read('x', 'b', 3, 4)]);
  });

  it('accepts concurrent writes observed in an order different from their call order', () => {
    expectLinearizable([
      write('x', 'a', 0, 10, 1),
      write('x', 'b', 1, 9, 2),
      read('x', 'b', 2, 3, 3), // b first ...
      read('x', 'a', 4, 11, 3), // ... then a
    ]);
  });

  it('treats operations that only touch at an instant as concurrent', () => {
    expectLinearizable([write('x', 'a', 0, 5), read('x', null, 5, 6)]);
  });

  it('accepts concurrent CASes where exactly one wins', () => {
    expectLinearizable([
      write('x', '0', 0, 1),
      cas('x', '0', 'a', false, 2, 10, 1),
      cas('x', '0', 'b', true, 3, 9, 2),
      read('x', 'b', 11, 12),
    ]);
  });

  it('keeps keys independent', () => {
    expectLinearizable([write('x', 'a', 0, 1), write('y', 'b', 0, 1), read('y', 'b', 2, 3), read('x', 'a', 2, 3)]);
  });
});

describe('checkKv: violations', () => {
  it('rejects a stale read: a read after a completed write returns the old value', () => {
    expectIllegal([write('x', 'old', 0, 1), write('x', 'new', 2, 3), read('x', 'old', 4, 5)]);
  });

  it('rejects a lost write: two acknowledged writes, a later read sees neither', () => {
    expectIllegal([write('x', 'a', 0, 5, 1), write('x', 'b', 1, 6, 2), read('x', null, 7, 8)]);
  });

  it('rejects a read of a value nobody wrote', () => {
    expectIllegal([write('x', 'a', 0, 1), read('x', 'z', 2, 3)]);
  });

  it('rejects two successful CASes from the same expected value', () => {
    expectIllegal([
      write('x', '0', 0, 1),
      cas('x', '0', 'a', true, 2, 10, 1),
      cas('x', '0', 'b', true, 3, 9, 2),
    ]);
  });

  it('rejects a failed CAS whose expected value was certainly current', () => {
    expectIllegal([write('x', 'a', 0, 1), cas('x', 'a', 'b', false, 2, 3), read('x', 'a', 4, 5)]);
  });

  it('rejects a successful CAS whose expected value was never current', () => {
    expectIllegal([write('x', 'a', 0, 1), cas('x', 'z', 'b', true, 2, 3)]);
  });

  it('rejects non-monotonic reads across clients (new then old, both after the write began)', () => {
    expectIllegal([
      write('x', 'a', 0, 1),
      write('x', 'b', 2, 20),
      read('x', 'b', 3, 4, 2),
      read('x', 'a', 5, 6, 3),
    ]);
  });

  it('names the failing key and gives the longest linearizable prefix', () => {
    const result = checkKv([write('y', 'a', 0, 1), write('x', 'a', 0, 1), read('x', 'b', 2, 3)]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.key).toBe('x');
    expect(result.reason).toContain('read(x) -> "b"');
    expect(result.partialLinearization.map((op) => op.input.type)).toEqual(['write']);
  });
});

describe('checkKv: operations with unknown outcome', () => {
  it('lets a timed-out write take effect', () => {
    expectLinearizable([timedOut(write('x', 'a', 0, 1)), read('x', 'a', 5, 6)]);
  });

  it('lets a timed-out write take effect late, after later operations', () => {
    expectLinearizable([timedOut(write('x', 'a', 0, 1)), read('x', null, 5, 6), read('x', 'a', 100, 101)]);
  });

  it('lets a timed-out write not take effect at all', () => {
    expectLinearizable([write('x', 'a', 0, 1), timedOut(write('x', 'b', 2, 3)), read('x', 'a', 5, 6)]);
  });

  it('still forbids a timed-out write taking effect before its call', () => {
    expectIllegal([read('x', 'a', 0, 1), timedOut(write('x', 'a', 2, 3))]);
  });

  it('forbids a timed-out write flickering: seen, then unseen, then seen', () => {
    expectIllegal([
      write('x', 'a', 0, 1),
      timedOut(write('x', 'b', 2, 3)),
      read('x', 'b', 4, 5),
      read('x', 'a', 6, 7),
    ]);
  });

  it('lets a timed-out CAS succeed or fail', () => {
    expectLinearizable([write('x', 'a', 0, 1), timedOut(cas('x', 'a', 'b', true, 2, 3)), read('x', 'b', 4, 5)]);
    expectLinearizable([write('x', 'a', 0, 1), timedOut(cas('x', 'a', 'b', true, 2, 3)), read('x', 'a', 4, 5)]);
  });

  it('ignores timed-out reads', () => {
    expectLinearizable([write('x', 'a', 0, 1), timedOut(read('x', 'zzz', 2, 3)), read('x', 'a', 4, 5)]);
  });
});

describe('checkKv: large random histories', () => {
  it('accepts a 20k-operation history over 8 keys with overlapping intervals quickly', () => {
    const history = randomLinearizableHistory({
      seed: 42,
      operationCount: 20_000,
      keyCount: 8,
      clientCount: 16,
      spacing: 10,
      jitterMax: 35, // each interval overlaps its ~3 neighbours on each side
      unknownFraction: 0.01,
    });
    const started = performance.now();
    const result = checkKv(history, { timeoutMs: 20_000 });
    const elapsedMs = performance.now() - started;
    expect(result.ok ? 'linearizable' : `${result.verdict}: ${result.reason}`).toBe('linearizable');
    expect(elapsedMs).toBeLessThan(5_000);
  });

  it('accepts many small random histories and rejects each after one read is corrupted', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const history = randomLinearizableHistory({
        seed,
        operationCount: 60,
        keyCount: 2,
        clientCount: 4,
        spacing: 10,
        jitterMax: 25,
        unknownFraction: 0.05,
      });
      const result = checkKv(history);
      expect(result.ok, `seed ${seed}: ${result.ok ? '' : result.reason}`).toBe(true);

      // A read returning a value no operation ever wrote cannot be linearized anywhere.
      const random = mulberry32(seed);
      const reads = history
        .map((op, i) => [op, i] as const)
        .filter(([op]) => op.input.type === 'read' && op.output !== UNKNOWN);
      if (reads.length === 0) continue;
      const [victim, index] = reads[Math.floor(random() * reads.length)]!;
      const corrupted = [...history];
      corrupted[index] = { ...victim, output: { type: 'read', value: 'never-written' } };
      expect(checkKv(corrupted).verdict, `seed ${seed}`).toBe('illegal');
    }
  });
});

describe('checkOperations: the generic search', () => {
  // A FIFO queue, not partitionable: checks the generic path and a model with structured state.
  type QueueInput = { readonly type: 'enqueue'; readonly value: number } | { readonly type: 'dequeue' };
  type QueueOutput = { readonly value: number | null };
  const queueModel: Model<readonly number[], QueueInput, QueueOutput> = {
    init: () => [],
    step(state, input, output) {
      if (input.type === 'enqueue') return [...state, input.value];
      const head = state.length === 0 ? null : state[0]!;
      if (output !== UNKNOWN && output.value !== head) return ILLEGAL;
      return state.slice(1);
    },
    equal: (a, b) => a.length === b.length && a.every((v, i) => v === b[i]),
    hash: (state) => state.reduce((h, v) => Math.imul(h ^ v, 0x01000193), 0x811c9dc5) >>> 0,
  };
  const op = (input: QueueInput, value: number | null, callTime: number, returnTime: number): Operation<QueueInput, QueueOutput> => ({
    clientId: 0,
    input,
    callTime,
    returnTime,
    output: { value },
  });

  it('accepts concurrent enqueues dequeued in either order', () => {
    const result = checkOperations(queueModel, [
      op({ type: 'enqueue', value: 1 }, null, 0, 10),
      op({ type: 'enqueue', value: 2 }, null, 1, 10),
      op({ type: 'dequeue' }, 2, 11, 12),
      op({ type: 'dequeue' }, 1, 13, 14),
    ]);
    expect(result.ok).toBe(true);
  });

  it('rejects FIFO order violated for sequential enqueues', () => {
    const result = checkOperations(queueModel, [
      op({ type: 'enqueue', value: 1 }, null, 0, 1),
      op({ type: 'enqueue', value: 2 }, null, 2, 3),
      op({ type: 'dequeue' }, 2, 4, 5),
    ]);
    expect(result.verdict).toBe('illegal');
  });

  it('returns unknown instead of hanging when the step budget runs out', () => {
    // Everything concurrent, then an impossible read: the search must try many orders.
    const history: KvOperation[] = [];
    for (let i = 0; i < 24; i++) history.push(write('x', `v${i}`, 0, 100, i));
    for (let i = 0; i < 24; i++) history.push(cas('x', `v${i}`, `w${i}`, true, 0, 100, 100 + i));
    history.push(read('x', 'never', 101, 102));
    const result = checkKv(history, { stepsMax: 5_000 });
    expect(result.verdict).toBe('unknown');
  });

  it('honours the wall-clock timeout', () => {
    const history: KvOperation[] = [];
    for (let i = 0; i < 40; i++) history.push(write('x', `v${i}`, 0, 100, i));
    for (let i = 0; i < 40; i++) history.push(cas('x', `v${i}`, `w${i}`, true, 0, 100, 100 + i));
    history.push(read('x', 'never', 101, 102));
    const started = performance.now();
    const result = checkKv(history, { timeoutMs: 200 });
    expect(result.verdict).toBe('unknown');
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
