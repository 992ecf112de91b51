// Two different state machines on one node host: the app's group and a small key-value group
// (as the control plane's will be) share the nodes, the gRPC transport and the tick, and both
// replicate. Real sockets and real LMDB files; three node hosts in this process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppHost } from '../../src/app/app-host.js';
import { NodeHost, defaultTiming } from '../../src/cluster/node-host.js';
import { createLogger } from '../../src/observability/logger.js';
import { ClusterMetrics } from '../../src/observability/metrics.js';
import { freePorts, pollUntil, shopAppDir } from '../support/cluster.js';
import { openKvGroup, type KvGroup } from '../support/kv-group.js';

const ids = ['n1', 'n2', 'n3'];
const dir = mkdtempSync(join(tmpdir(), 'lockstep-two-groups-'));
const nodes: NodeHost[] = [];
const kvs: KvGroup[] = [];
const fatal: unknown[] = [];

afterAll(async () => {
  for (const node of nodes) await node.stop();
  for (const kv of kvs) await kv.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('one node host, two state machines', () => {
  it('replicates an app group and a key-value group side by side', async () => {
    const ports = await freePorts(ids.length);
    const peers = new Map(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
    const apps: AppHost[] = [];
    for (const [i, id] of ids.entries()) {
      const logger = createLogger({ node: id }).child({}, { level: 'warn' });
      const node = new NodeHost({
        nodeId: id,
        region: 'eu',
        dataDir: join(dir, id),
        grpcAddress: `127.0.0.1:${ports[i]}`,
        faultInjection: false,
        timing: { ...defaultTiming, tickMs: 20 },
        logger,
        metrics: new ClusterMetrics(new Registry(), { groups: () => [], transport: () => ({ bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesDropped: 0, reconnects: 0 }) }),
        onFatal: (error) => fatal.push(error),
      });
      nodes.push(node);
      node.addPeers(peers);
      await node.start();
      apps.push(await node.hostApp({ name: 'shop', appDir: shopAppDir, initialVoters: ids }, 1_000));
      const kv = openKvGroup({ dataDir: join(dir, id, 'kv'), nodeId: id, voters: ids, transport: node.transportFor('kv'), logger, fatal });
      kvs.push(kv);
      node.hostGroup(kv.group);
    }
    // The app's leader deploys the app directory through the app's log.
    await pollUntil(() => (apps.every((app) => app.activeRuntime() !== undefined) ? true : undefined), 20_000, 'the app to be active on every node');
    expect([...nodes[0]!.groups.all()].map((group) => group.groupId).sort()).toEqual(['kv', 'shop']);

    // Writes through followers of each group (forwarded inside the Raft stream).
    const appFollower = apps.find((app) => !app.group.isLeader())!;
    const version = appFollower.appliedState().activeVersion;
    const write = await appFollower.propose({
      kind: 'write',
      version,
      reads: [],
      writes: [{ op: 'put', table: 'Product', id: 'p1', value: { name: 'Lamp', price: 20, stock: 5 } }],
      ts: Date.now(),
    });
    expect(write.result).toEqual({ ok: true });
    const kvFollower = kvs.find((kv) => !kv.group.isLeader())!;
    let last = 0;
    for (let n = 0; n < 120; n++) last = (await kvFollower.group.propose({ op: 'put', key: `k${n % 7}`, value: `v${n}` }, 5_000)).index;
    const removed = await kvFollower.group.propose({ op: 'delete', key: 'k0' }, 5_000);
    expect(removed.result).toEqual({ existed: true });

    // Every node applied both groups' writes, each to its own state machine.
    for (const [i, app] of apps.entries()) {
      await app.group.waitForApplied(write.index, 5_000);
      expect(app.store.table('Product').get('p1')?.v).toMatchObject({ name: 'Lamp', stock: 5 });
      const kv = kvs[i]!;
      await kv.group.waitForApplied(removed.index, 5_000);
      expect([kv.machine.get('k0'), kv.machine.get('k6')]).toEqual([undefined, 'v118']);
      expect(kv.group.appliedIndex()).toBeGreaterThanOrEqual(last);
      // 120 entries with a snapshot every 50: the key-value log was compacted on every node.
      expect(kv.group.logBounds().firstIndex).toBeGreaterThan(1);
    }
    // Neither group's entries reached the other's state machine.
    expect(apps[0]!.store.table('kv').getKeysCount()).toBe(0);
    expect(fatal).toEqual([]);
  });
});
