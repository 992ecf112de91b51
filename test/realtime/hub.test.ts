// ChangeHub without sockets: routing by filter, replay and reset, paced catch-up while the log
// keeps growing, slow-sink disconnection and bookkeeping.

import { describe, expect, it } from 'vitest';
import { ChangeHub, slowReason, type CloseCause, type SubscriberSink } from '../../src/realtime/hub.js';
import type { SubscriptionFilter } from '../../src/realtime/types.js';
import { MemoryChangeSource, commit, waitFor, wire } from './helpers.js';

/** Records deliveries; optionally pretends to have a small transport buffer drained by a timer. */
class RecordingSink implements SubscriberSink {
  readonly received: { message: Record<string, unknown>; index: number }[] = [];
  readonly flushedThrough: number[] = [];
  closedWith: { reason: string; cause: CloseCause | undefined } | undefined;
  private inFlight = 0;
  private drainListener: (() => void) | undefined;

  constructor(private readonly options: { acceptMax?: number; roomMessages?: number } = {}) {}

  deliver(message: string, index: number): boolean {
    if (this.options.acceptMax !== undefined && this.received.length >= this.options.acceptMax) return false;
    this.received.push({ message: JSON.parse(message) as Record<string, unknown>, index });
    this.inFlight += 1;
    if (this.options.roomMessages !== undefined && this.inFlight === 1) {
      // The "kernel" takes everything in flight a little later, as a socket would.
      setTimeout(() => {
        this.inFlight = 0;
        const listener = this.drainListener;
        this.drainListener = undefined;
        listener?.();
      }, 1);
    }
    return true;
  }

  flush(): void {
    this.flushedThrough.push(this.received.at(-1)?.index ?? -1);
  }

  hasRoom(): boolean {
    return this.options.roomMessages === undefined || this.inFlight < this.options.roomMessages;
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }

  close(reason: string, cause?: CloseCause): void {
    this.closedWith = { reason, cause };
  }

  messages(): Record<string, unknown>[] {
    return this.received.map((entry) => entry.message);
  }
}

function setup(retainedIndexes = 1_000): { source: MemoryChangeSource; hub: ChangeHub } {
  const source = new MemoryChangeSource(retainedIndexes);
  return { source, hub: new ChangeHub(source, { replayChunkEventsMax: 4 }) };
}

describe('ChangeHub live fan-out', () => {
  it('routes record, table and app events to matching subscribers only, and version events to all', () => {
    const { source, hub } = setup();
    const filters: SubscriptionFilter[] = [{}, { table: 'Product' }, { table: 'Product', id: 42 }, { table: 'Order' }];
    const sinks = filters.map((filter) => {
      const sink = new RecordingSink();
      hub.subscribe(filter, undefined, sink);
      return sink;
    });
    commit(source, hub, [{ type: 'put', table: 'Product', id: 42, value: { name: 'a' } }]);
    commit(source, hub, [{ type: 'patch', table: 'Product', id: '7', value: { name: 'b' } }]);
    commit(source, hub, [{ type: 'delete', table: 'Order', id: 1 }]);
    commit(source, hub, [{ type: 'version', value: 2, version: 2 }]);
    for (const [position, filter] of filters.entries()) {
      expect(sinks[position]!.messages(), JSON.stringify(filter)).toEqual(source.expected(0, filter).map(wire));
    }
    expect(sinks[2]!.messages().map((message) => message.type)).toEqual(['put', 'version']);
    expect(sinks[0]!.messages().at(-1)).toEqual({ type: 'version', value: 2, index: 4, version: 2 });
  });

  it('matches a URL string id against a numeric record id', () => {
    const { source, hub } = setup();
    const sink = new RecordingSink();
    hub.subscribe({ table: 'Product', id: '42' }, undefined, sink);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 42, value: {} }]);
    expect(sink.received).toHaveLength(1);
  });

  it('flushes once per publish, after all events of the index', () => {
    const { source, hub } = setup();
    const sink = new RecordingSink();
    hub.subscribe({ table: 'Product' }, undefined, sink);
    commit(source, hub, [
      { type: 'put', table: 'Product', id: 1, value: {} },
      { type: 'put', table: 'Product', id: 2, value: {} },
    ]);
    expect(sink.received.map((entry) => entry.index)).toEqual([1, 1]);
    expect(sink.flushedThrough).toEqual([1]);
  });

  it('rejects a publish that goes back in the log', () => {
    const { source, hub } = setup();
    commit(source, hub, [{ type: 'put', table: 'Product', id: 1 }]);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 1 }]);
    expect(() => hub.publish([{ type: 'put', table: 'Product', id: 1, value: {}, index: 1, version: 1 }])).toThrow(/index 1 after 2/);
  });
});

describe('ChangeHub replay', () => {
  it('replays from since, then continues live without duplicates', () => {
    const { source, hub } = setup();
    for (let position = 0; position < 10; position += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: position % 3, value: position }]);
    const sink = new RecordingSink();
    hub.subscribe({ table: 'Product' }, 4, sink);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 9, value: 'live' }]);
    expect(sink.messages()).toEqual(source.expected(4, { table: 'Product' }).map(wire));
  });

  it('sends a reset naming the oldest retained and the applied index when the window is gone, then goes live', () => {
    const { source, hub } = setup(5);
    for (let position = 0; position < 20; position += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: 1, value: position }]);
    const sink = new RecordingSink();
    hub.subscribe({ table: 'Product' }, 3, sink);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 1, value: 'live' }]);
    expect(sink.messages()).toEqual([{ type: 'reset', index: 16, current: 20 }, wire(source.all.at(-1)!)]);
    expect(hub.counters().resetsSent).toBe(1);
  });

  it('replays exactly once when the window reaches back precisely to since + 1', () => {
    const { source, hub } = setup(5);
    for (let position = 0; position < 20; position += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: 1, value: position }]);
    const sink = new RecordingSink();
    hub.subscribe({}, 15, sink);
    expect(sink.received.map((entry) => entry.index)).toEqual([16, 17, 18, 19, 20]);
  });

  it('paces replay on the sink buffer and covers events committed meanwhile, never splitting an index', async () => {
    const { source, hub } = setup();
    const filter = { table: 'Product' };
    const commitOne = (step: number): void => {
      // Every third entry touches two Product records under one index, every fifth another table.
      const inits = [{ type: 'put' as const, table: step % 5 === 0 ? 'Order' : 'Product', id: step, value: step }];
      if (step % 3 === 0) inits.push({ type: 'put', table: 'Product', id: -step, value: step });
      commit(source, hub, inits);
    };
    for (let step = 0; step < 200; step += 1) commitOne(step);
    const sink = new RecordingSink({ roomMessages: 3 });
    hub.subscribe(filter, 10, sink);
    expect(sink.received.length, 'replay should wait for the buffer to drain').toBeLessThan(10);
    // Keep committing while the replay trickles out.
    for (let step = 200; step < 400; step += 1) {
      commitOne(step);
      if (step % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const expected = source.expected(10, filter).map(wire);
    await waitFor('replay to catch up', () => sink.received.length >= expected.length, () => sink.received.length);
    commitOne(400);
    expect(sink.messages()).toEqual(source.expected(10, filter).map(wire));
    // Each flush ends on a complete index: the next delivered event has a higher index.
    const indexes = sink.received.map((entry) => entry.index);
    for (const flushed of sink.flushedThrough) {
      const last = indexes.lastIndexOf(flushed);
      expect(indexes[last + 1] === undefined || indexes[last + 1]! > flushed, `flush split index ${flushed}`).toBe(true);
    }
  });
});

describe('ChangeHub bookkeeping', () => {
  it('drops a sink whose buffer is full, with the slow cause, and stops delivering to it', () => {
    const { source, hub } = setup();
    const sink = new RecordingSink({ acceptMax: 2 });
    hub.subscribe({}, undefined, sink);
    for (let position = 0; position < 5; position += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: 1 }]);
    expect(sink.closedWith).toEqual({ reason: slowReason, cause: 'slow' });
    expect(sink.received).toHaveLength(2);
    expect(hub.subscriberCount()).toBe(0);
    expect(hub.counters().slowDisconnects).toBe(1);
  });

  it('unsubscribes (twice is harmless), closes all with the reason, and refuses past subscribersMax', () => {
    const source = new MemoryChangeSource(10);
    const hub = new ChangeHub(source, { subscribersMax: 2 });
    const first = hub.subscribe({ table: 'A', id: 1 }, undefined, new RecordingSink());
    const second = new RecordingSink();
    hub.subscribe({ table: 'A' }, undefined, second);
    expect(hub.isFull()).toBe(true);
    expect(() => hub.subscribe({}, undefined, new RecordingSink())).toThrow(/at most 2 subscribers/);
    first.unsubscribe();
    first.unsubscribe();
    expect(hub.subscriberCount()).toBe(1);
    hub.closeAll('bye');
    expect(second.closedWith).toEqual({ reason: 'bye', cause: 'shutdown' });
    expect(hub.subscriberCount()).toBe(0);
  });

  it('leaves nothing registered when the source read fails, and ends a paced replay whose read fails later', async () => {
    const { source, hub } = setup();
    for (let step = 0; step < 20; step += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: step }]);
    const readSince = source.readSince.bind(source);
    source.readSince = () => {
      throw new Error('disk on fire');
    };
    expect(() => hub.subscribe({}, 0, new RecordingSink())).toThrow(/disk on fire/);
    expect(hub.subscriberCount()).toBe(0);
    let reads = 0;
    source.readSince = (since, filter) => {
      reads += 1;
      if (reads > 1) throw new Error('disk on fire');
      return readSince(since, filter);
    };
    const sink = new RecordingSink({ roomMessages: 2 });
    hub.subscribe({}, 0, sink);
    await waitFor('the paced replay to hit the failing read', () => sink.closedWith !== undefined, () => sink.received.length);
    expect(sink.closedWith).toEqual({ reason: 'replay failed: disk on fire', cause: 'error' });
    expect(sink.received.map((entry) => entry.index)).toEqual(source.all.map((event) => event.index));
    expect(hub.subscriberCount()).toBe(0);
  });

  it('rejects an id filter without a table', () => {
    const { hub } = setup();
    expect(() => hub.subscribe({ id: 1 }, undefined, new RecordingSink())).toThrow(/id given without table/);
  });
});
