// What the client SDK adds (issue 11), measured two ways on this machine:
//  1. Latency over a bare fetch: sequential GETs of one record from a `lockstep dev` node, the
//     SDK's `table.get` against `fetch` + `response.json()` to the same URL, in alternating
//     blocks so the machine's drift falls on both.
//  2. Time to fail over: a 3-node cluster (no control plane, all nodes as seeds), sequential
//     PUTs through the SDK, the node it uses killed: the longest write around the kill is the
//     time the client took to move to another node (its deadline covers it, nothing fails).
// Prints markdown.
//
//   npm run build && node dist/bench/client-overhead.js [--requests 2000]
import { parseArgs } from 'node:util';
import { runMain } from './run-main.js';
import { connect } from '../src/client/index.js';
import { Cluster, type ClusterNode } from '../test/support/cluster.js';
import { copyApp, removeDir, startDevServer, tempDir } from '../test/support/dev-server.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' } } });
const requests = Math.min(Math.max(100, Number(values.requests)), 20_000);
const blocks = 4;

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function overhead(): Promise<void> {
  const appDir = copyApp('shop');
  const dataDir = tempDir('lockstep-bench-client-');
  const server = await startDevServer(appDir, dataDir);
  const client = await connect({ seeds: [server.base], app: 'shop' });
  try {
    const items = client.table<{ name: string }>('Item');
    await items.put('bench', { name: 'bench' });
    const bare: number[] = [];
    const sdk: number[] = [];
    const url = `${server.base}/shop/Item/bench`;
    for (let block = 0; block < blocks; block++) {
      for (let i = 0; i < requests / blocks; i++) {
        const started = performance.now();
        await (await fetch(url, { headers: { accept: 'application/json' } })).json();
        bare.push(performance.now() - started);
      }
      for (let i = 0; i < requests / blocks; i++) {
        const started = performance.now();
        await items.get('bench');
        sdk.push(performance.now() - started);
      }
    }
    process.stdout.write(`### SDK over a bare fetch: ${requests} sequential GETs each, one lockstep dev node\n\n| | p50 ms | p99 ms |\n|---|---|---|\n`);
    process.stdout.write(`| fetch | ${percentile(bare, 50).toFixed(3)} | ${percentile(bare, 99).toFixed(3)} |\n| SDK get | ${percentile(sdk, 50).toFixed(3)} | ${percentile(sdk, 99).toFixed(3)} |\n`);
    process.stdout.write(`\nadded at p50: ${((percentile(sdk, 50) - percentile(bare, 50)) * 1000).toFixed(0)} µs\n\n`);
  } finally {
    client.close();
    await server.stop();
    removeDir(appDir);
    removeDir(dataDir);
  }
}

async function failover(): Promise<void> {
  const cluster = await Cluster.start({ size: 3, idPrefix: 'f' });
  try {
    await cluster.waitForLeader();
    const client = await connect({ seeds: cluster.running().map((node) => node.base), app: 'shop', deadlineMs: 30_000 });
    const items = client.table<{ name: string }>('Item');
    const victim = cluster.running().find((node) => node.base === client.nodes()[0]?.url) as ClusterNode;
    const latencies: number[] = [];
    let killedAt = 0;
    for (let i = 0; i < 200; i++) {
      if (i === 100) {
        await victim.kill();
        killedAt = latencies.length;
      }
      const started = performance.now();
      await items.put(`f${i}`, { name: `v${i}` });
      latencies.push(performance.now() - started);
    }
    client.close();
    const around = latencies.slice(killedAt, killedAt + 5);
    process.stdout.write(`### Failover: 200 sequential PUTs through the SDK, its node (${victim.id}) killed before write 100, 3-node cluster\n\n`);
    process.stdout.write(`| | ms |\n|---|---|\n| p50 write before the kill | ${percentile(latencies.slice(0, killedAt), 50).toFixed(1)} |\n| first write after the kill (failover) | ${(around[0] ?? 0).toFixed(1)} |\n| longest of the next five | ${Math.max(...around).toFixed(1)} |\n| p50 write after | ${percentile(latencies.slice(killedAt + 5), 50).toFixed(1)} |\n`);
  } finally {
    await cluster.close();
  }
}

runMain(async () => {
  await overhead();
  await failover();
});
