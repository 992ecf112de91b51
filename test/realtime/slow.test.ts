// A subscriber that stops reading must cost a bounded amount of server memory: once its send
// buffer limit is exceeded it is disconnected with a reason, and nothing more is queued for it.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { slowReason } from '../../src/realtime/hub.js';
import { commit, openSse, openWs, startNode, waitFor, type TestNode } from './helpers.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

const bufferBytesMax = 64 * 1024;
const eventValueBytes = 16 * 1024;
/** 4000 events of 16 KiB = 64 MiB offered: far beyond the loopback socket buffers. */
const eventsOfferedMax = 4_000;

/** Commits big events until the slow subscriber is dropped; returns how many were committed. */
async function publishUntilDropped(target: TestNode): Promise<number> {
  const value = 'v'.repeat(eventValueBytes);
  for (let step = 1; step <= eventsOfferedMax; step += 1) {
    commit(target.source, target.hub, [{ type: 'put', table: 'Product', id: step, value }]);
    // Let the event loop hand queued bytes to the kernel, as between real commits.
    if (step % 4 === 0) await nextTurn();
    if (target.hub.subscriberCount() === 0) return step;
  }
  throw new Error(`slow subscriber still connected after ${eventsOfferedMax} events; counters ${JSON.stringify(target.realtime.counters())}`);
}

describe('slow subscribers', () => {
  it('a paused WebSocket client is closed with 1008 and the reason, after a bounded buffer', async () => {
    node = await startNode({ bufferBytesMax, bufferMessagesMax: 1_000 });
    const client = await openWs(node.port, '/shop/Product/');
    client.socket.pause();
    const committed = await publishUntilDropped(node);
    const counters = node.realtime.counters();
    expect(counters.slowDisconnects).toBe(1);
    expect(node.hub.counters().slowDisconnects).toBe(1);
    // Server-side queue never went past the limit by more than one message.
    expect(counters.bufferedBytesPeak).toBeLessThanOrEqual(bufferBytesMax + eventValueBytes + 1024);
    // After the drop nothing more was accepted for this client.
    const sentAtDrop = counters.bytesSent;
    commit(node.source, node.hub, [{ type: 'put', table: 'Product', id: 0, value: 'after' }]);
    expect(node.realtime.counters().bytesSent).toBe(sentAtDrop);
    console.info(`ws slow: dropped after ${committed} events (${(committed * eventValueBytes / 1048576).toFixed(1)} MiB offered), ` +
      `${(sentAtDrop / 1048576).toFixed(1)} MiB taken by socket+kernel, peak queued ${counters.bufferedBytesPeak} B`);

    client.socket.resume();
    const closed = await client.closed;
    expect(closed).toEqual({ code: 1008, reason: slowReason });
    // What the client got before the close is a gap-free prefix of the log.
    expect(client.messages.map((message) => message.index)).toEqual(client.messages.map((_, position) => position + 1));
  });

  it('a paused SSE client gets a final error event with the reason, then the stream ends', async () => {
    node = await startNode({ bufferBytesMax, bufferMessagesMax: 1_000 });
    const client = await openSse(node.port, '/shop/Product/');
    await waitFor('subscribed', () => node!.hub.subscriberCount() === 1);
    client.response.pause();
    await publishUntilDropped(node);
    expect(node.realtime.counters().bufferedBytesPeak).toBeLessThanOrEqual(bufferBytesMax + eventValueBytes + 1024);
    client.response.resume();
    await client.ended;
    expect(client.events.at(-1)).toEqual({ event: 'error', id: undefined, data: JSON.stringify({ type: 'error', reason: slowReason }) });
    const ids = client.events.filter((event) => event.event === undefined).map((event) => Number(event.id));
    expect(ids).toEqual(ids.map((_, position) => position + 1));
  });

  it('a reading client survives a burst larger than the buffer limit committed in one tick', async () => {
    node = await startNode({ bufferBytesMax, bufferMessagesMax: 1_000 });
    const client = await openWs(node.port, '/shop/Product/');
    const value = 'v'.repeat(eventValueBytes);
    const burstEvents = 20;
    // 320 KiB in one synchronous burst: the kernel takes it, so nothing counts as queued for long.
    for (let step = 1; step <= burstEvents; step += 1) commit(node.source, node.hub, [{ type: 'put', table: 'Product', id: step, value }]);
    await waitFor('the whole burst', () => client.messages.length === burstEvents, () => client.messages.length);
    expect(node.realtime.counters().slowDisconnects).toBe(0);
    expect(node.hub.subscriberCount()).toBe(1);
  });

  it('a paused client that never reads is destroyed after closeGraceMs', async () => {
    node = await startNode({ bufferBytesMax, bufferMessagesMax: 1_000, closeGraceMs: 100 });
    const client = await openWs(node.port, '/shop/Product/');
    client.socket.pause();
    await publishUntilDropped(node);
    // The server gives up on the close handshake; the client sees an abnormal closure.
    await waitFor('session ended on the server', () => node!.realtime.subscriberCount() === 0);
    client.socket.resume();
    expect((await client.closed).code).toBe(1006);
  });
});
