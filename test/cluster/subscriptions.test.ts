// Real-time on a cluster: subscribers on the leader and on followers receive the same changes,
// in the same log order, with the same indexes, whichever node the writes went through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEventStream, openWebSocket, type ChangeStream } from '../support/change-stream.js';
import { Cluster, type ClusterNode } from '../support/cluster.js';

const writes = 30;

describe('subscriptions across replicas', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ size: 3, idPrefix: 's', tickMs: 30 });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('every replica streams the same ordered changes', { timeout: 90_000 }, async () => {
    const leader = await cluster.waitForLeader();
    await cluster.waitReady();
    const followers = cluster.running().filter((node) => node !== leader);
    const wsUrl = (base: string): string => `${base.replace(/^http/, 'ws')}/shop/Item/`;
    const streams: ChangeStream[] = [
      await openWebSocket(wsUrl(leader.base)),
      ...(await Promise.all(followers.map((node) => openWebSocket(wsUrl(node.base))))),
      await openEventStream(`${followers[0]!.base}/shop/Item/`),
    ];
    try {
      const nodes = cluster.running();
      for (let i = 0; i < writes; i++) {
        // Writes go through every node in turn: followers forward theirs to the leader.
        const node = nodes[i % nodes.length]!;
        const response = await fetch(`${node.base}/shop/Item/sub-${i % 7}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `write ${i}` }),
          signal: AbortSignal.timeout(10_000),
        });
        expect(response.status).toBe(204);
      }
      const received = await Promise.all(streams.map((stream) => stream.waitForCount(writes, 20_000)));
      const reference = received[0]!.map((m) => [m.index, m.type, m.id, (m.value as { name: string }).name]);
      expect(reference).toHaveLength(writes);
      // Log order: strictly increasing indexes, and the writes in the order they were made.
      expect(reference.map(([index]) => index)).toEqual([...reference.map(([index]) => index)].sort((a, b) => (a as number) - (b as number)));
      expect(reference.map(([, , , name]) => name)).toEqual(Array.from({ length: writes }, (_, i) => `write ${i}`));
      for (const messages of received.slice(1)) {
        expect(messages.map((m) => [m.index, m.type, m.id, (m.value as { name: string }).name])).toEqual(reference);
      }
    } finally {
      await Promise.all(streams.map((stream) => stream.close()));
    }
  });
});

describe('subscriptions on a follower that catches up through a snapshot', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ size: 3, idPrefix: 'z', tickMs: 30, snapshotEntries: 50 });
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('get every change made while the follower was cut off, in order, from the window the snapshot brings', { timeout: 120_000 }, async () => {
    const leader = await cluster.waitForLeader();
    await cluster.waitReady();
    const [behind, other] = cluster.running().filter((node) => node !== leader) as [ClusterNode, ClusterNode];
    const stream = await openWebSocket(`${behind.base.replace(/^http/, 'ws')}/shop/Item/`);
    try {
      await cluster.partition([[leader, other], [behind]]);
      const cutOffWrites = 200;
      for (let i = 0; i < cutOffWrites; i++) {
        const response = await fetch(`${leader.base}/shop/Item/snap-${i % 11}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `cut off ${i}` }),
          signal: AbortSignal.timeout(10_000),
        });
        expect(response.status).toBe(204);
      }
      const leaderStatus = (await leader.status())!;
      // The leader compacted past everything the cut-off follower has: it needs a snapshot.
      expect(leaderStatus.firstLogIndex).toBeGreaterThan((await behind.status())!.lastLogIndex + 1);
      await cluster.heal();
      const received = await stream.waitForCount(cutOffWrites, 30_000);
      const caughtUp = (await behind.status())!;
      expect(caughtUp.snapshotIndex).toBeGreaterThan(1);
      expect(received.every((message) => message.type === 'put')).toBe(true);
      expect(received.map((message) => (message.value as { name: string }).name)).toEqual(Array.from({ length: cutOffWrites }, (_, i) => `cut off ${i}`));
      const indexes = received.map((message) => message.index);
      expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    } finally {
      await cluster.heal().catch(() => undefined);
      await stream.close();
    }
  });
});
