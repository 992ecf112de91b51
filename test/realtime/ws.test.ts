// WebSocket subscriptions against a real node:http server on 127.0.0.1.

import { afterEach, describe, expect, it } from 'vitest';
import { commit, openWs, refusedWs, startNode, waitFor, wire, type TestNode } from './helpers.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

describe('WebSocket subscriptions', () => {
  it('deliver live events in log order on record and collection paths; version events reach both', async () => {
    node = await startNode();
    const { source, hub } = node;
    const record = await openWs(node.port, '/shop/Product/42');
    const collection = await openWs(node.port, '/shop/Product/');
    const other = await openWs(node.port, '/shop/Order/');
    expect(hub.subscriberCount()).toBe(3);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 42, value: { price: 1 } }]);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 7, value: { price: 2 } }]);
    commit(source, hub, [
      { type: 'patch', table: 'Product', id: 42, value: { price: 3 } },
      { type: 'delete', table: 'Product', id: 7 },
    ]);
    commit(source, hub, [{ type: 'version', value: 2, version: 2 }]);
    commit(source, hub, [{ type: 'delete', table: 'Product', id: 42, version: 2 }]);
    const expectRecord = source.expected(0, { table: 'Product', id: '42' }).map(wire);
    const expectCollection = source.expected(0, { table: 'Product' }).map(wire);
    await waitFor('all messages', () => record.messages.length >= expectRecord.length && collection.messages.length >= expectCollection.length && other.messages.length >= 1,
      () => [record.messages, collection.messages]);
    expect(record.messages).toEqual(expectRecord);
    expect(record.messages.map((message) => message.type)).toEqual(['put', 'patch', 'version', 'delete']);
    expect(collection.messages).toEqual(expectCollection);
    expect(other.messages).toEqual([{ type: 'version', value: 2, index: 4, version: 2 }]);
  });

  it('replays ?since= and sends a reset when the window no longer reaches back', async () => {
    node = await startNode({}, 5);
    const { source, hub } = node;
    for (let step = 1; step <= 12; step += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: step, value: step }]);
    const resumed = await openWs(node.port, '/shop/Product/?since=9');
    const tooOld = await openWs(node.port, '/shop/Product/?since=2');
    commit(source, hub, [{ type: 'put', table: 'Product', id: 13, value: 13 }]);
    await waitFor('replay and live', () => resumed.messages.length >= 4 && tooOld.messages.length >= 2, () => [resumed.messages, tooOld.messages]);
    expect(resumed.messages).toEqual(source.expected(9, { table: 'Product' }).map(wire));
    expect(tooOld.messages).toEqual([{ type: 'reset', index: 8, current: 12 }, wire(source.all.at(-1)!)]);
  });

  it('answers a bad since or an unknown path with problem+json before upgrading', async () => {
    node = await startNode();
    for (const since of ['-1', 'abc', '1.5', '9007199254740993', '']) {
      const refused = await refusedWs(node.port, `/shop/Product/?since=${since}`);
      expect(refused.status, `since=${since}`).toBe(400);
      expect(refused.contentType).toBe('application/problem+json');
      expect(JSON.parse(refused.body)).toMatchObject({ status: 400, errors: [{ field: 'since' }] });
    }
    expect((await refusedWs(node.port, '/shop/Product/?since=1&since=2')).status).toBe(400);
    expect((await refusedWs(node.port, '/nope/Product/')).status).toBe(404);
    expect(node.realtime.counters().rejectedRequests).toBe(7);
    expect(node.hub.subscriberCount()).toBe(0);
  });

  it('refuses with 503 when the app hub is full', async () => {
    node = await startNode({ subscribersMax: 1 });
    await openWs(node.port, '/shop/Product/1');
    const refused = await refusedWs(node.port, '/shop/Product/2');
    expect(refused.status).toBe(503);
  });

  it('unsubscribes when the client closes, and ignores client messages', async () => {
    node = await startNode();
    const client = await openWs(node.port, '/shop/');
    client.socket.send('hello?');
    commit(node.source, node.hub, [{ type: 'put', table: 'Product', id: 1 }]);
    await waitFor('one message', () => client.messages.length === 1);
    client.socket.close(1000, 'done');
    await waitFor('hub to drop the subscriber', () => node!.hub.subscriberCount() === 0 && node!.realtime.subscriberCount() === 0);
    expect(node.realtime.counters()).toMatchObject({ subscriptions: 0, subscriptionsTotal: 1, messagesSent: 1 });
  });

  it('terminates a peer that stops answering pings', async () => {
    node = await startNode({ wsPingIntervalMs: 50 });
    const client = await openWs(node.port, '/shop/Product/');
    // A paused client reads nothing, so it never sees the ping and never answers.
    client.socket.pause();
    await waitFor('dead peer termination', () => node!.realtime.counters().deadPeerTerminations === 1, () => node!.realtime.counters());
    await waitFor('hub to drop the subscriber', () => node!.hub.subscriberCount() === 0);
    client.socket.terminate();
  });

  it('keeps a live peer that answers pings', async () => {
    node = await startNode({ wsPingIntervalMs: 20 });
    await openWs(node.port, '/shop/Product/');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(node.realtime.counters().deadPeerTerminations).toBe(0);
    expect(node.hub.subscriberCount()).toBe(1);
  });

  it('closes every subscriber with 1001 and the reason on shutdown, and sends extra headers on upgrade', async () => {
    node = await startNode();
    const client = await openWs(node.port, '/shop/Product/1');
    expect(client.upgradeHeaders['x-lockstep-index']).toBe('0');
    const stopping = node;
    node = undefined;
    await stopping.realtime.close('node restarting');
    expect(await client.closed).toEqual({ code: 1001, reason: 'node restarting' });
    expect(stopping.hub.subscriberCount()).toBe(0);
    expect((await refusedWs(stopping.port, '/shop/Product/1')).status).toBe(503);
    stopping.server.closeAllConnections();
    await new Promise<void>((resolve) => stopping.server.close(() => resolve()));
  });
});
