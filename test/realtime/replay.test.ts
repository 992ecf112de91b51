// Resuming with ?since / Last-Event-ID while the log keeps growing: every subscriber must see
// exactly the filtered log after its resume point - no gap, no duplicate - across the switch from
// paced replay to live delivery, over real sockets with small send buffers.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SubscriptionFilter } from '../../src/realtime/types.js';
import { commit, openSse, openWs, startNode, waitFor, wire, type TestNode } from './helpers.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

/** Deterministic mix: two tables, a hot record, and multi-record write sets sharing one index. */
function commitStep(target: TestNode, step: number): void {
  const padding = 'x'.repeat(200 + (step % 7) * 50);
  const inits = [{ type: 'put' as const, table: step % 4 === 0 ? 'Order' : 'Product', id: step % 9, value: { step, padding } }];
  if (step % 3 === 0) inits.push({ type: 'put', table: 'Product', id: 3, value: { step, padding } });
  if (step === 700) {
    target.source.append([{ type: 'version', value: 2, version: 2 }]);
    target.hub.publish(target.source.all.slice(-1));
    return;
  }
  commit(target.source, target.hub, inits);
}

describe('replay concurrent with publishing', () => {
  it('yields exactly the filtered log after since for WS and SSE subscribers that join mid-stream', async () => {
    node = await startNode({ bufferBytesMax: 16 * 1024, bufferMessagesMax: 64, replayChunkEventsMax: 8 }, 5_000);
    const current = node;
    const stepsPrecommitted = 400;
    const stepsTotal = 1_400;
    for (let step = 1; step <= stepsPrecommitted; step += 1) commitStep(current, step);

    const publishing = (async () => {
      for (let step = stepsPrecommitted + 1; step <= stepsTotal; step += 1) {
        commitStep(current, step);
        if (step % 3 === 0) await nextTurn();
      }
    })();

    const plans: { path: string; since: number; filter: SubscriptionFilter; transport: 'ws' | 'sse' }[] = [
      { transport: 'ws', path: '/shop/Product/?since=0', since: 0, filter: { table: 'Product' } },
      { transport: 'ws', path: '/shop/Product/3?since=100', since: 100, filter: { table: 'Product', id: 3 } },
      { transport: 'sse', path: '/shop/?since=50', since: 50, filter: {} },
      { transport: 'sse', path: '/shop/Order/?since=350', since: 350, filter: { table: 'Order' } },
    ];
    const joinedAt: number[] = [];
    const clients: { received: () => Record<string, unknown>[]; since: number; filter: SubscriptionFilter }[] = [];
    for (const plan of plans) {
      // Join while the publisher is running, at different points of the log.
      await nextTurn();
      if (plan.transport === 'ws') {
        const client = await openWs(current.port, plan.path);
        clients.push({ received: () => client.messages, since: plan.since, filter: plan.filter });
      } else {
        const client = await openSse(current.port, plan.path);
        clients.push({ received: () => client.messages(), since: plan.since, filter: plan.filter });
      }
      joinedAt.push(current.source.appliedIndex());
    }
    // Otherwise the test would not exercise replay racing the publisher.
    expect(Math.max(...joinedAt), `joined at ${joinedAt.join(',')}`).toBeLessThan(stepsTotal);
    await publishing;
    expect(current.source.appliedIndex()).toBe(stepsTotal);

    for (const client of clients) {
      const expected = current.source.expected(client.since, client.filter).map(wire);
      await waitFor(`${JSON.stringify(client.filter)} since ${client.since} to receive ${expected.length}`,
        () => client.received().length >= expected.length, () => client.received().length);
      expect(client.received()).toEqual(expected);
    }
    expect(current.realtime.counters().slowDisconnects).toBe(0);
    // The replays really were paced by the small buffers, not sent in one burst.
    expect(current.hub.counters().replayWaits).toBeGreaterThan(0);
    expect(current.realtime.counters().bufferedBytesPeak).toBeLessThanOrEqual(16 * 1024 + 1024);
  });
});
