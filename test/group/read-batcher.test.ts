// The read-point batcher: one round per batch, a read never joins a round that started before it.
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/group/clock.js';
import { ReadIndexBatcher } from '../../src/group/read-batcher.js';

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('ReadIndexBatcher', () => {
  it('answers reads that arrive during a round from the next round, one round per batch', async () => {
    const rounds: ReturnType<typeof deferred<number>>[] = [];
    const batcher = new ReadIndexBatcher(() => {
      const round = deferred<number>();
      rounds.push(round);
      return round.promise;
    }, systemClock);
    const deadline = Date.now() + 5_000;
    const first = batcher.read(deadline);
    expect(rounds).toHaveLength(1);
    // These arrive while round 1 is in flight: round 1's read point may predate them.
    const second = batcher.read(deadline);
    const third = batcher.read(deadline);
    expect(rounds).toHaveLength(1);
    rounds[0]?.resolve(10);
    expect(await first).toBe(10);
    await Promise.resolve();
    expect(rounds).toHaveLength(2);
    rounds[1]?.resolve(12);
    expect(await Promise.all([second, third])).toEqual([12, 12]);
  });

  it('fails a batch with its round and keeps serving later reads', async () => {
    let calls = 0;
    const batcher = new ReadIndexBatcher(() => (++calls === 1 ? Promise.reject(new Error('no quorum')) : Promise.resolve(7)), systemClock);
    await expect(batcher.read(Date.now() + 1_000)).rejects.toThrow('no quorum');
    expect(await batcher.read(Date.now() + 1_000)).toBe(7);
  });

  it('fails the round in flight too, and the next read does not wait for it', async () => {
    const rounds: ReturnType<typeof deferred<number>>[] = [];
    const batcher = new ReadIndexBatcher(() => {
      const round = deferred<number>();
      rounds.push(round);
      return round.promise;
    }, systemClock);
    const deadline = Date.now() + 5_000;
    const inFlight = batcher.read(deadline);
    const waiting = batcher.read(deadline);
    batcher.failAll(() => new Error('the leader changed'));
    await expect(inFlight).rejects.toThrow('the leader changed');
    await expect(waiting).rejects.toThrow('the leader changed');
    // A new round starts at once, while the abandoned one is still unanswered.
    const after = batcher.read(deadline);
    expect(rounds).toHaveLength(2);
    rounds[0]?.resolve(3); // the abandoned round answers late: ignored, and starts nothing
    await Promise.resolve();
    expect(rounds).toHaveLength(2);
    rounds[1]?.resolve(9);
    expect(await after).toBe(9);
  });

  it('rejects a read at its own deadline even if its round hangs', async () => {
    const batcher = new ReadIndexBatcher(() => new Promise<number>(() => undefined), systemClock);
    const started = Date.now();
    await expect(batcher.read(Date.now() + 50)).rejects.toThrow(/deadline/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
