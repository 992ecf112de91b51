// Server-Sent Events subscriptions against a real node:http server on 127.0.0.1.

import { afterEach, describe, expect, it } from 'vitest';
import { commit, httpGet, openSse, startNode, waitFor, wire, type TestNode } from './helpers.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

describe('SSE subscriptions', () => {
  it('deliver live events in order on record and collection paths, with id only on the last event of an index', async () => {
    node = await startNode();
    const { source, hub } = node;
    const record = await openSse(node.port, '/shop/Product/42');
    const collection = await openSse(node.port, '/shop/Product/');
    expect(record.response.statusCode).toBe(200);
    expect(record.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(record.response.headers['x-lockstep-index']).toBeDefined();
    await waitFor('both subscribed', () => hub.subscriberCount() === 2);
    commit(source, hub, [{ type: 'put', table: 'Product', id: 42, value: { price: 1 } }]);
    commit(source, hub, [
      { type: 'put', table: 'Product', id: 1, value: {} },
      { type: 'patch', table: 'Product', id: 42, value: { price: 2 } },
    ]);
    commit(source, hub, [{ type: 'version', value: 2, version: 2 }]);
    commit(source, hub, [{ type: 'delete', table: 'Product', id: 42, version: 2 }]);
    const expectRecord = source.expected(0, { table: 'Product', id: 42 }).map(wire);
    const expectCollection = source.expected(0, { table: 'Product' }).map(wire);
    await waitFor('all events', () => record.events.length >= expectRecord.length && collection.events.length >= expectCollection.length,
      () => [record.events, collection.events]);
    expect(record.messages()).toEqual(expectRecord);
    expect(collection.messages()).toEqual(expectCollection);
    // Index 2 carries two events; only the second names the resume point.
    expect(collection.events.map((event) => event.id)).toEqual(['1', undefined, '2', '3', '4']);
    expect(record.events.map((event) => event.id)).toEqual(['1', '2', '3', '4']);
  });

  it('resumes after Last-Event-ID, which wins over the since still in the URL, and never splits an index', async () => {
    node = await startNode();
    const { source, hub } = node;
    for (let step = 1; step <= 6; step += 1) {
      commit(source, hub, [
        { type: 'put', table: 'Product', id: step, value: 'a' },
        { type: 'put', table: 'Product', id: -step, value: 'b' },
      ]);
    }
    const first = await openSse(node.port, '/shop/Product/?since=1');
    await waitFor('replay', () => first.events.length === 10, () => first.events);
    expect(first.events.filter((event) => event.id !== undefined).map((event) => event.id)).toEqual(['2', '3', '4', '5', '6']);
    first.close();
    const resumed = await openSse(node.port, '/shop/Product/?since=1', { 'Last-Event-ID': '4' });
    commit(source, hub, [{ type: 'delete', table: 'Product', id: 1 }]);
    await waitFor('resume and live', () => resumed.events.length === 5, () => resumed.events);
    expect(resumed.messages()).toEqual(source.expected(4, { table: 'Product' }).map(wire));
  });

  it('sends a reset with id = current when the window is gone, so the next resume continues after it', async () => {
    node = await startNode({}, 3);
    const { source, hub } = node;
    for (let step = 1; step <= 10; step += 1) commit(source, hub, [{ type: 'put', table: 'Product', id: step }]);
    const client = await openSse(node.port, '/shop/Product/', { 'Last-Event-ID': '2' });
    await waitFor('reset', () => client.events.length === 1);
    expect(client.events[0]).toEqual({ event: undefined, id: '10', data: JSON.stringify({ type: 'reset', index: 8, current: 10 }) });
  });

  it('answers a bad since or Last-Event-ID with 400 problem+json', async () => {
    node = await startNode();
    const badSince = await httpGet(node.port, '/shop/Product/?since=x', { Accept: 'text/event-stream' });
    expect(badSince.status).toBe(400);
    expect(badSince.contentType).toBe('application/problem+json');
    expect(JSON.parse(badSince.body)).toMatchObject({ status: 400, errors: [{ field: 'since' }] });
    const badHeader = await httpGet(node.port, '/shop/Product/', { Accept: 'text/event-stream', 'Last-Event-ID': '-3' });
    expect(badHeader.status).toBe(400);
    expect(JSON.parse(badHeader.body)).toMatchObject({ errors: [{ field: 'Last-Event-ID' }] });
    expect(node.hub.subscriberCount()).toBe(0);
  });

  it('sends heartbeat comments and unsubscribes when the client goes away', async () => {
    node = await startNode({ sseHeartbeatMs: 20 });
    const client = await openSse(node.port, '/shop/Product/1');
    await waitFor('two heartbeats', () => client.comments.length >= 2, () => client.comments);
    expect(client.comments[0]).toBe(': heartbeat');
    client.close();
    await waitFor('hub to drop the subscriber', () => node!.hub.subscriberCount() === 0 && node!.realtime.subscriberCount() === 0);
  });

  it('ends with an error event naming the reason on shutdown', async () => {
    node = await startNode();
    const client = await openSse(node.port, '/shop/');
    await waitFor('subscribed', () => node!.hub.subscriberCount() === 1);
    await node.realtime.close('node restarting');
    await client.ended;
    expect(client.events.at(-1)).toEqual({ event: 'error', id: undefined, data: JSON.stringify({ type: 'error', reason: 'node restarting' }) });
  });
});
